"""Small files that cost a parser much more than their size: the hostile inputs of the
retrieval tests, made at test time."""

from __future__ import annotations

import io
import zipfile
import zlib


def _pdf(objs: dict[int, bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets: dict[int, int] = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, objs[num])
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[i] for i in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
_PAGE = (
    b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
    b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
)


def pdf_page_tree_bomb(fanout: int = 312, declared: int | None = None) -> bytes:
    """A PDF of a few KB with ``fanout**2`` pages: the page tree repeats one node of
    ``fanout`` pages ``fanout`` times, and every page shows the same content stream.
    ``declared``: the /Count the root claims (the real count when None)."""
    ops = b"BT /F1 11 Tf 72 740 Td (the same page again) Tj ET"
    kids = " ".join(["5 0 R"] * fanout).encode()
    middle = " ".join(["6 0 R"] * fanout).encode()
    count = fanout * fanout if declared is None else declared
    return _pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [%s] /Count %d >>" % (middle, count),
            3: _FONT,
            4: b"<< /Length %d >>\nstream\n%s\nendstream" % (len(ops), ops),
            5: _PAGE % 6,
            6: b"<< /Type /Pages /Parent 2 0 R /Kids [%s] /Count %d >>" % (kids, fanout),
        }
    )


def pdf_shared_slow_stream(pages: int, operators: int) -> bytes:
    """A small PDF whose ``pages`` pages share one compressed content stream of
    ``operators`` no-op operators around a line of text: each page costs the parser the
    whole stream (about a second per 20,000 operators with pypdf)."""
    ops = b"BT /F1 11 Tf 72 740 Td (slow shared stream) Tj ET\n" + b"1 0 0 1 0 0 cm\n" * operators
    packed = zlib.compress(ops, 9)
    kids = " ".join(["5 0 R"] * pages).encode()
    return _pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
            3: _FONT,
            4: b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream"
            % (len(packed), packed),
            5: _PAGE % 2,
        }
    )


def docx_expanding(paragraph: str, repeats: int) -> bytes:
    """A .docx (a few hundred KB at most) whose body is ``paragraph`` ``repeats`` times,
    written straight into the zip: it unzips to ``len(paragraph) * repeats`` characters
    and more."""
    import docx

    buf = io.BytesIO()
    docx.Document().save(buf)
    source = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    xml = source.read("word/document.xml").decode()
    head, tail = xml.split("<w:sectPr", 1)
    body = f"<w:p><w:r><w:t>{paragraph}</w:t></w:r></w:p>".encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                target.writestr(item, source.read(item.filename))
                continue
            with target.open(item.filename, "w", force_zip64=True) as part:
                part.write(head.encode())
                block = body * 1000
                for _ in range(repeats // 1000):
                    part.write(block)
                part.write(body * (repeats % 1000))
                part.write(b"<w:sectPr" + tail.encode())
    return out.getvalue()


def html_nested(depth: int, tag: str = "span") -> bytes:
    """``depth`` nested ``tag`` elements, each with a word of text before the next one."""
    return (
        b"<html><body><p>"
        + f"<{tag}>deep ".encode() * depth
        + f"</{tag}>".encode() * depth
        + b"</p></body></html>"
    )
