"""The retrieval tool on a real corpus written at test time: txt, md, html, docx, a
multi-page PDF, an encrypted, a corrupt, an empty and an oversized file; and hostile
files (tests/retrieval_hostile.py) that cost a parser far more than their size."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("bm25s")
pytest.importorskip("pypdf")
pytest.importorskip("docx")
pytest.importorskip("selectolax")

from qwen_agent import Agent, ConfigError  # noqa: E402
from qwen_agent.errors import ToolCallError, ToolError  # noqa: E402
from qwen_agent.events import ToolResultEvent  # noqa: E402
from qwen_agent.testing import ScriptedLLM  # noqa: E402
from qwen_agent.tools.retrieval import (  # noqa: E402
    Block,
    DocumentError,
    Retrieval,
    chunk_blocks,
    parse_document,
)

LIMIT_MB = 0.1  # the oversized file is over it, every other file well under

FILLER = [
    "The committee reviewed the quarterly figures and asked for a clearer summary.",
    "Several teams reported progress on the migration of older services.",
    "Weather conditions delayed the delivery of equipment to the northern site.",
    "A new onboarding guide explains how to request access to shared drives.",
    "The budget for travel remains unchanged compared with the previous year.",
    "Volunteers organised a workshop about writing accessible documentation.",
    "Maintenance of the heating system is scheduled for the first week of spring.",
    "Customer feedback highlighted the need for faster responses by email.",
]


def filler(n: int, seed: int = 0) -> str:
    """``n`` sentences of plausible, shared vocabulary (so BM25 has to discriminate)."""
    return " ".join(FILLER[(seed + i * 3) % len(FILLER)] for i in range(n))


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF, one page per list of lines (Helvetica, extractable text)."""
    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td"]
        for line in lines:
            esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({esc}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objs.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for num, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def wrap(text: str, width: int = 80) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line] if line else lines


def encrypted(pdf: bytes, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def write_corpus(root: Path) -> Path:
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide.txt").write_text(
        f"{filler(6)}\n\n{filler(5, 1)} The lighthouse keeper is called Oswaldo Brannigan "
        f"and he lives on the island of Skellig.\n\n{filler(7, 2)}\n",
        encoding="utf-8",
    )
    (docs / "notes.md").write_text(
        f"# Team notes\n\n{filler(4, 3)}\n\n## Pricing\n\nThe premium plan costs 37 euros "
        f"per month, billed through the invoicing portal.\n\n## Holidays\n\n{filler(5, 4)}\n",
        encoding="utf-8",
    )
    (docs / "sub" / "deeper.md").write_text(
        f"# Deep\n\n{filler(3, 5)} The basement archive stores the original parchment maps.\n",
        encoding="utf-8",
    )
    (docs / "page.html").write_text(
        "<html><head><title>Museum</title><style>.xylophone { color: red }</style>"
        "<script>var xylophone = 'hidden script text';</script></head><body>"
        f"<h1>Museum</h1><p>{filler(4, 6)}</p><h2>Opening hours</h2>"
        "<p>The <b>museum</b> opens at half past nine on Sundays, and the quokka exhibit "
        "is on the second floor.</p><div hidden>secret wombat text</div>"
        f"<p>{filler(3, 7)}</p><noscript>xylophone fallback</noscript></body></html>",
        encoding="utf-8",
    )
    import docx

    d = docx.Document()
    d.add_heading("Logistics", level=1)
    d.add_paragraph(filler(4, 1))
    table = d.add_table(rows=2, cols=3)
    for cell, text in zip(
        table.rows[0].cells + table.rows[1].cells,
        ["Site", "City", "Capacity", "Warehouse", "Tromso harbour", "5120 pallets"],
        strict=True,
    ):
        cell.text = text
    d.add_heading("Staff", level=1)
    d.add_paragraph(f"{filler(3, 2)} The forklift instructor is Margarethe Lindqvist.")
    d.save(docs / "report.docx")
    pdf_pages = [
        wrap(filler(10, 0)),
        wrap(f"{filler(4, 3)} The calibration constant of the flux capacitor is 8812.")
        + wrap(filler(4, 5)),
        wrap(f"{filler(3, 6)} The emergency exit is behind the vending machine."),
    ]
    manual = make_pdf(pdf_pages)
    (docs / "manual.pdf").write_bytes(manual)
    # an owner password only: the empty user password opens it, so it is read
    (docs / "owner_only.pdf").write_bytes(
        encrypted(make_pdf([wrap("The owner protected memo mentions migrating pelicans.")]), "")
    )
    (docs / "locked.pdf").write_bytes(
        encrypted(make_pdf([["The locked secret is tangerine."]]), "pw")
    )
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catal" + os.urandom(64))
    (docs / "empty.txt").write_bytes(b"")
    (docs / "huge.txt").write_text("enormous " * 20_000, encoding="utf-8")  # ~180 KB
    (docs / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # unsupported: skipped
    (docs / ".hidden.txt").write_text("the hidden marmot", encoding="utf-8")
    return docs


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path)


def make(docs: Path, tmp_path: Path, **kw) -> Retrieval:
    kw.setdefault("max_file_mb", LIMIT_MB)
    return Retrieval(files=[str(docs)], index_dir=str(tmp_path / "index"), **kw)


# -- parsers and chunks ------------------------------------------------------------------


def test_pdf_fixture_has_extractable_text_per_page():
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(make_pdf([["alpha one"], ["beta two"]])))
    assert [p.extract_text().strip() for p in reader.pages] == ["alpha one", "beta two"]


def test_html_keeps_visible_text_and_headings_and_drops_script_style_hidden(corpus):
    parsed = parse_document("page.html", (corpus / "page.html").read_bytes())
    text = " ".join(b.text for b in parsed.blocks)
    assert "quokka" in text and "museum opens at half past nine" in text
    assert "xylophone" not in text and "wombat" not in text
    headings = [b.text for b in parsed.blocks if b.heading]
    assert headings == ["Museum", "Opening hours"]


def test_docx_reads_paragraphs_table_cells_and_heading_styles(corpus):
    parsed = parse_document("report.docx", (corpus / "report.docx").read_bytes())
    texts = [b.text for b in parsed.blocks]
    assert "Warehouse | Tromso harbour | 5120 pallets" in texts
    assert [b.text for b in parsed.blocks if b.heading] == ["Logistics", "Staff"]
    assert any("Margarethe Lindqvist" in t for t in texts)


def test_pdf_pages_are_numbered_from_one(corpus):
    parsed = parse_document("manual.pdf", (corpus / "manual.pdf").read_bytes())
    assert {b.page for b in parsed.blocks} == {1, 2, 3}
    assert any("8812" in b.text and b.page == 2 for b in parsed.blocks)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("x.xyz", b"data", "unsupported file type '.xyz'"),
        ("x.txt", b"", "empty"),
        ("x.txt", b"\x00\x01\x02binary", "binary"),
        ("x.pdf", b"garbage, not a pdf", "not a readable PDF"),
        ("x.docx", b"PK\x03\x04 not really a zip", "not a readable .docx"),
        ("x.md", b"\n\n   \n", "no text"),
    ],
)
def test_parse_errors_name_the_file_and_the_reason(name, data, reason):
    with pytest.raises(DocumentError) as err:
        parse_document(name, data)
    assert str(err.value).startswith(f"{name}: ") and reason in str(err.value)


def test_an_aes_pdf_that_the_empty_password_opens_is_read():
    pytest.importorskip("cryptography")  # pypdf[crypto]: AES needs it
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["aes protected memo"]]))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    buf = io.BytesIO()
    writer.write(buf)
    parsed = parse_document("aes.pdf", buf.getvalue())
    assert [(b.text, b.page) for b in parsed.blocks] == [("aes protected memo", 1)]


def test_a_parser_crash_becomes_a_document_error(monkeypatch):
    from qwen_agent.tools.retrieval import parsers

    def boom(data, notes, budget):
        raise IndexError("list index out of range")

    monkeypatch.setitem(parsers.SUPPORTED, ".txt", boom)
    with pytest.raises(DocumentError, match=r"^x\.txt: could not be parsed \(IndexError"):
        parse_document("x.txt", b"text")


def test_text_that_is_not_utf8_is_read_as_cp1252_with_a_note():
    parsed = parse_document("old.txt", "café déjà vu".encode("cp1252"))
    assert parsed.blocks[0].text == "café déjà vu" and "Windows-1252" in parsed.notes[0]


def test_chunks_respect_size_pages_and_overlap():
    sentences = [f"Sentence number {i} talks about topic{i} in some detail." for i in range(60)]
    blocks = [Block(" ".join(sentences[:40]), page=1), Block(" ".join(sentences[40:]), page=2)]
    chunks = chunk_blocks(blocks, "f.pdf", max_chars=300, overlap=80)
    assert all(len(c.text) <= 300 + 80 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.file == "f.pdf" for c in chunks)
    assert {c.page for c in chunks} == {1, 2}
    for a, b in zip(chunks, chunks[1:], strict=False):
        last = a.text.rsplit(". ", 1)[-1]
        if a.page == b.page:  # consecutive passages of a page share a sentence
            assert b.text.startswith(last)
        else:
            assert not b.text.startswith(last)
    joined = " ".join(c.text for c in chunks)
    assert all(f"topic{i} " in joined for i in range(60))  # nothing lost


def test_a_long_word_run_without_spaces_is_cut_hard():
    chunks = chunk_blocks([Block("x" * 2500)], "cjk.txt", max_chars=1000, overlap=0)
    assert [len(c.text) for c in chunks] == [1000, 1000, 500]


# -- the tool ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "file", "page"),
    [
        ("who is the lighthouse keeper", "guide.txt", None),
        ("premium plan price per month", "notes.md", None),
        ("when does the museum open on Sundays", "page.html", None),
        ("warehouse capacity pallets Tromso", "report.docx", None),
        ("forklift instructor", "report.docx", None),
        ("calibration constant flux capacitor", "manual.pdf", 2),
        ("where is the emergency exit", "manual.pdf", 3),
        ("pelicans memo", "owner_only.pdf", 1),
        ("parchment maps archive", "sub/deeper.md", None),
    ],
)
def test_the_planted_fact_ranks_first(corpus, tmp_path, query, file, page):
    rag = make(corpus, tmp_path)
    hits = rag.search(query)
    assert hits, query
    assert (hits[0].file, hits[0].page) == (file, page)
    assert hits[0].rank == 1 and all(
        a.score >= b.score for a, b in zip(hits, hits[1:], strict=False)
    )


def test_bad_files_are_reported_by_name_and_the_rest_is_indexed(corpus, tmp_path):
    rag = make(corpus, tmp_path)
    errors = dict(rag.errors)
    assert set(errors) == {"locked.pdf", "broken.pdf", "empty.txt", "huge.txt"}
    assert "encrypted" in errors["locked.pdf"] and "password" in errors["locked.pdf"]
    assert "not a readable PDF" in errors["broken.pdf"]
    assert "empty" in errors["empty.txt"]
    assert "size limit" in errors["huge.txt"] and "0.1 MB" in errors["huge.txt"]
    report = rag.report
    assert report.indexed == sorted(
        ["guide.txt", "manual.pdf", "notes.md", "owner_only.pdf", "page.html", "report.docx"]
        + ["sub/deeper.md"]
    )
    assert report.skipped == ["data.csv"]  # and .hidden.txt is not even listed
    assert not rag.search("tangerine") and not rag.search("enormous")
    assert not rag.search("marmot") and not rag.search("xylophone")


def test_results_name_files_relative_and_never_a_host_path(corpus, tmp_path):
    rag = make(corpus, tmp_path)
    text = rag.call(query="parchment maps lighthouse calibration", top_k=5)
    assert str(tmp_path) not in text and "/tmp" not in text
    assert "sub/deeper.md" in text and "manual.pdf, page 2" in text
    assert text.splitlines()[0].startswith("3 passages")
    assert "[1] " in text and "(score " in text
    assert all(not Path(f).is_absolute() for f, _ in rag.errors)
    assert str(tmp_path) not in " ".join(r for _, r in rag.errors)


def test_the_index_persists_and_only_changed_files_are_parsed_again(corpus, tmp_path):
    first = make(corpus, tmp_path)
    assert first.report.rebuilt and len(first.report.parsed) == 7
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert set(manifest["files"]) == set(first.report.indexed)
    assert len(manifest["files"]["manual.pdf"]["sha256"]) == 64

    again = make(corpus, tmp_path)
    assert again.report.parsed == [] and not again.report.rebuilt
    assert again.report.reused == first.report.indexed
    assert again.search("forklift instructor")[0].file == "report.docx"

    guide = corpus / "guide.txt"
    guide.write_text(f"{filler(4)} The lighthouse keeper retired; the new one is Ingrid Ovesen.")
    (corpus / "notes.md").unlink()
    st = (corpus / "manual.pdf").stat()  # touched, same bytes: hashed, not parsed
    os.utime(corpus / "manual.pdf", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    third = make(corpus, tmp_path)
    report = third.report
    assert report.parsed == ["guide.txt"]
    assert report.removed == ["notes.md"]
    assert "manual.pdf" in report.reused and report.rebuilt
    assert third.search("lighthouse keeper")[0].chunk.text.endswith("Ingrid Ovesen.")
    assert not third.search("Brannigan") and not third.search("premium invoicing portal")
    assert third.search("calibration constant")[0].page == 2

    fourth = make(corpus, tmp_path)  # the new mtime was stored: nothing is even hashed
    assert fourth.report.parsed == [] and not fourth.report.rebuilt
    gens = [p.name for p in (tmp_path / "index").iterdir() if p.name.startswith("gen-")]
    assert len(gens) == 1  # old generations are removed


def test_changed_settings_parse_everything_again(corpus, tmp_path):
    make(corpus, tmp_path)
    other = make(corpus, tmp_path, chunk_chars=400)
    assert len(other.report.parsed) == 7 and other.report.rebuilt


def test_a_damaged_index_is_rebuilt(corpus, tmp_path):
    make(corpus, tmp_path)
    (tmp_path / "index" / "manifest.json").write_text("{not json")
    again = make(corpus, tmp_path)
    assert len(again.report.parsed) == 7
    assert again.search("forklift instructor")[0].file == "report.docx"


def test_lost_tokens_mean_parsing_again_not_a_crash(corpus, tmp_path):
    make(corpus, tmp_path)
    gen = next(p for p in (tmp_path / "index").iterdir() if p.name.startswith("gen-"))
    (gen / "tokens.json").unlink()
    (corpus / "guide.txt").write_text("The lighthouse keeper is now Ingrid Ovesen.")
    again = make(corpus, tmp_path)
    assert len(again.report.parsed) == 7 and again.report.reused == []
    assert any("tokens" in note for _, note in again.report.notes)
    assert again.search("lighthouse keeper")[0].file == "guide.txt"


def test_a_same_size_rewrite_with_the_same_mtime_is_still_seen(tmp_path):
    docs = tmp_path / "d"
    docs.mkdir()
    f = docs / "a.txt"
    f.write_text("the secret colour is orange")
    st = f.stat()
    make(docs, tmp_path)
    f.write_text("the secret colour is purple")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    again = make(docs, tmp_path)
    assert again.report.parsed == ["a.txt"]  # modified just now: hashed, not trusted
    assert again.search("purple") and not again.search("orange")


def test_an_unwritable_index_dir_keeps_the_index_in_memory(corpus, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rag = Retrieval(files=[str(corpus)], index_dir=str(blocker / "idx"), max_file_mb=LIMIT_MB)
    assert rag.search("forklift instructor")[0].file == "report.docx"
    assert any("could not be saved" in note for _, note in rag.report.notes)


def test_empty_and_stopword_queries_are_call_errors(corpus, tmp_path):
    rag = make(corpus, tmp_path)
    with pytest.raises(ToolCallError, match="empty"):
        rag.call(query="   ")
    with pytest.raises(ToolCallError, match="common words"):
        rag.call(query="what is the of and")
    assert "No passage" in rag.call(query="zzyzx")


def test_nothing_indexed_is_said_plainly(tmp_path):
    docs = tmp_path / "d"
    docs.mkdir()
    (docs / "empty.txt").write_bytes(b"")
    rag = Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"))
    text = rag.call(query="anything")
    assert text.startswith("No documents are available") and "empty.txt" in text


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Retrieval(files=[str(tmp_path / "missing")], index_dir=str(tmp_path / "i"))
    with pytest.raises(ConfigError, match="retrieval needs files"):
        Retrieval()
    with pytest.raises(ConfigError, match="files is empty"):
        Retrieval(files=[], index_dir=str(tmp_path / "i"))
    with pytest.raises(ConfigError, match="list of paths"):
        Retrieval(files=[3], index_dir=str(tmp_path / "i"))
    many = tmp_path / "many"
    many.mkdir()
    for i in range(4):
        (many / f"{i}.txt").write_text(f"file {i}")
    with pytest.raises(ConfigError, match="max_files=3"):
        Retrieval(files=[str(many)], index_dir=str(tmp_path / "i"), max_files=3)
    with pytest.raises(ConfigError, match="language"):
        Retrieval(files=[str(many)], index_dir=str(tmp_path / "i"), language="klingon")
    odd = tmp_path / "x.xyz"
    odd.write_text("x")
    rag = Retrieval(files=[str(odd), str(many)], index_dir=str(tmp_path / "i"))
    assert rag.errors[0][0] == "x.xyz" and "unsupported" in rag.errors[0][1]


def test_symlinks_out_of_the_folder_are_skipped(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("the private diary mentions flamingos")
    docs = tmp_path / "d"
    docs.mkdir()
    (docs / "inside.txt").write_text("the public page mentions herons")
    (docs / "link.txt").symlink_to(outside)
    (docs / "alias.txt").symlink_to(docs / "inside.txt")  # stays inside: indexed
    rag = Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"))
    assert rag.report.skipped == ["link.txt"]
    assert rag.report.indexed == ["alias.txt", "inside.txt"]
    assert not rag.search("flamingos")


def test_default_index_dir_is_keyed_by_the_file_set(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("QWEN_AGENT_CACHE_DIR", str(tmp_path / "cache"))
    a = Retrieval(files=[str(corpus)], lazy=True, max_file_mb=LIMIT_MB)
    b = Retrieval(files=[str(corpus / "guide.txt")], lazy=True)
    assert a.index_dir.parent == tmp_path / "cache" / "retrieval"
    assert a.index_dir != b.index_dir
    assert not a.index_dir.exists()  # lazy: nothing done yet
    assert a.search("lighthouse keeper")[0].file == "guide.txt"
    assert (a.index_dir / "manifest.json").exists()


def test_concurrent_searches_during_refreshes(corpus, tmp_path):
    rag = make(corpus, tmp_path)
    failures: list[BaseException] = []

    def search() -> None:
        try:
            for _ in range(30):
                assert rag.search("forklift instructor")[0].file == "report.docx"
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=search) for _ in range(4)]
    threads += [threading.Thread(target=rag.refresh) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_through_an_agent_the_tool_result_holds_the_fact(corpus, tmp_path):
    rag = make(corpus, tmp_path)
    call = (
        '<tool_call>\n{"name": "retrieval", "arguments": '
        '{"query": "calibration constant of the flux capacitor"}}\n</tool_call>'
    )
    llm = ScriptedLLM([call, "The constant is 8812 [1]."])
    events = list(Agent(llm=llm, tools=[rag]).run("What is the calibration constant?"))
    results = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert len(results) == 1 and not results[0].is_error
    assert "8812" in results[0].text and "[1] manual.pdf, page 2" in results[0].text
    assert "8812" in llm.prompts[1][-1].text  # the model saw it
    spec = llm.requests[0].tools[0]
    assert spec.name == "retrieval" and spec.parameters["required"] == ["query"]
    assert "manual.pdf" in spec.description  # the model is told what it can search
    assert "broken.pdf" not in spec.description  # and not what failed

    empty = ScriptedLLM(['<tool_call>\n{"name": "retrieval", "arguments": {}}\n</tool_call>', "ok"])
    events = list(Agent(llm=empty, tools=[rag]).run("?"))
    result = next(e.result for e in events if isinstance(e, ToolResultEvent))
    assert result.is_error and "query" in result.text


def test_importing_qwen_agent_imports_no_retrieval_library():
    code = (
        "import sys, qwen_agent, qwen_agent.tools.retrieval as r; r.Retrieval; "
        "print([m for m in ('bm25s', 'pypdf', 'docx', 'selectolax', 'Stemmer', 'numpy') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_benchmark_runs_on_a_small_corpus():
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "benchmarks/retrieval.py", "--chunks", "300", "--files", "6"]
        + ["--queries", "30", "--many-files", "50"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "corpus: 300 chunks in 6 files" in out.stdout
    assert "p50 " in out.stdout and "(1 parsed)" in out.stdout
    assert "50 files: build " in out.stdout and "reopen unchanged" in out.stdout


def test_names_never_show_host_folders_and_symlinks_stay_inside(tmp_path):
    from qwen_agent.tools.retrieval import Retrieval

    home = tmp_path / "home" / "alice"
    docs = home / "docs"
    docs.mkdir(parents=True)
    (docs / "a.md").write_text("The boat leaves at noon from pier four.\n")
    secret = home / ".secret.txt"
    secret.write_text("The vault code is 7319.\n")
    (docs / "link.txt").symlink_to(secret)
    extra = tmp_path / "data" / "x.txt"
    extra.parent.mkdir()
    extra.write_text("Lunch is served at one.\n")
    rag = Retrieval(files=[str(docs), str(extra)], index_dir=str(tmp_path / "idx"))
    assert sorted(rag.report.parsed) == ["docs/a.md", "x.txt"]
    assert "7319" not in rag.call(query="vault code") and str(tmp_path) not in rag.description
    assert str(tmp_path) not in rag.call(query="boat pier")
    assert rag.call(query="lunch", top_k=2.0)  # JSON's 2.0 is an integer
    with pytest.raises(ToolCallError, match="top_k must be between"):
        rag.call(query="lunch", top_k=2.5)


# -- files swapped after the scan ------------------------------------------------------------


def _outside_and_docs(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.txt").write_text("the private diary mentions flamingos")
    docs = tmp_path / "d"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("the public page mentions herons")
    (docs / "sub" / "c.txt").write_text("the public annex mentions storks")
    (docs / "b.txt").write_text("the public notes mention cranes")
    return outside, docs


@pytest.mark.timeout(60)
def test_a_file_swapped_for_a_link_or_a_fifo_after_the_scan_is_not_read(tmp_path):
    outside, docs = _outside_and_docs(tmp_path)
    rag = Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"), lazy=True)  # scanned
    (docs / "a.txt").unlink()
    (docs / "a.txt").symlink_to(outside / "a.txt")
    (docs / "b.txt").unlink()
    os.mkfifo(docs / "b.txt")  # opening it for reading would wait for a writer
    errors = dict(rag.errors)
    assert "outside the indexed folder" in errors["a.txt"]
    assert "not a regular file" in errors["b.txt"]
    assert rag.report.indexed == ["sub/c.txt"]
    assert not rag.search("flamingos") and rag.search("storks")[0].file == "sub/c.txt"


def test_a_folder_swapped_for_a_link_after_the_scan_does_not_escape(tmp_path):
    outside, docs = _outside_and_docs(tmp_path)
    (outside / "c.txt").write_text("the private ledger mentions pelicans")
    rag = make(docs, tmp_path)
    assert rag.search("storks")[0].file == "sub/c.txt"
    (docs / "sub").rename(tmp_path / "moved")
    (docs / "sub").symlink_to(outside, target_is_directory=True)
    report = rag.refresh(rescan=False)  # the names scanned before: sub/c.txt
    assert "outside the indexed folder" in dict(report.failed)["sub/c.txt"]
    assert not rag.search("pelicans") and not rag.search("storks")
    assert rag.search("herons")[0].file == "a.txt"


# -- what one file may cost --------------------------------------------------------------------


def _normal_beside(docs: Path) -> None:
    docs.mkdir(exist_ok=True)
    (docs / "normal.txt").write_text("The ferry timetable lists a departure at seven.")


@pytest.mark.timeout(120)
def test_a_docx_that_expands_past_the_limits_is_refused_and_the_rest_indexed(tmp_path):
    from tests.retrieval_hostile import docx_expanding

    docs = tmp_path / "d"
    _normal_beside(docs)
    paragraph = "lorem ipsum dolor sit amet " * 40  # 1,080 characters
    (docs / "long.docx").write_bytes(docx_expanding(paragraph, 6_000))  # 6.5 M characters
    (docs / "bomb.docx").write_bytes(docx_expanding(paragraph, 80_000))  # unzips to 86 MB
    assert (docs / "bomb.docx").stat().st_size < 500_000
    rag = Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"))  # the default limits
    errors = dict(rag.errors)
    assert "more than 5,000,000 characters" in errors["long.docx"]
    assert "max_chars_per_file" in errors["long.docx"]
    assert "unzips to 86 MB" in errors["bomb.docx"]
    assert rag.report.indexed == ["normal.txt"]
    assert rag.search("ferry departure")[0].file == "normal.txt"
    assert rag.report.seconds < 30


@pytest.mark.timeout(120)
def test_a_pdf_whose_page_tree_repeats_a_node_is_refused_by_its_page_count(tmp_path):
    from tests.retrieval_hostile import pdf_page_tree_bomb

    docs = tmp_path / "d"
    _normal_beside(docs)
    (docs / "bomb.pdf").write_bytes(pdf_page_tree_bomb())  # 4 KB, 97,344 pages
    (docs / "liar.pdf").write_bytes(pdf_page_tree_bomb(declared=1))  # and says it has one
    rag = Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"))
    errors = dict(rag.errors)
    for name in ("bomb.pdf", "liar.pdf"):
        assert "has 97,344 pages, over the limit of 5,000" in errors[name]
    assert rag.report.indexed == ["normal.txt"] and rag.search("ferry")
    assert rag.report.seconds < 30


@pytest.mark.timeout(60)
def test_parsing_that_runs_past_the_deadline_is_stopped_and_the_rest_indexed(tmp_path):
    from tests.retrieval_hostile import html_nested, pdf_shared_slow_stream

    docs = tmp_path / "d"
    _normal_beside(docs)
    # 60 pages sharing one content stream: about a minute with pypdf
    (docs / "slow.pdf").write_bytes(pdf_shared_slow_stream(60, 20_000))
    # nested divs: lexbor's tree building is quadratic in their depth (one C call)
    (docs / "deep.html").write_bytes(html_nested(80_000, "div"))
    rag = Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"), parse_timeout_s=1.0)
    errors = dict(rag.errors)
    for name in ("slow.pdf", "deep.html"):
        assert "took longer than 1 s to parse" in errors[name], errors
    assert rag.report.indexed == ["normal.txt"] and rag.search("ferry")
    assert rag.report.seconds < 20
    (docs / "late.html").write_text("<p>The harbour master is called Ilse Brandt.</p>")
    report = rag.refresh()
    assert report.parsed == ["late.html"]  # the killed worker was replaced
    assert rag.search("harbour master")[0].file == "late.html"
    # the slow files are remembered as failed (unchanged, same limits): not parsed again
    assert dict(report.failed) == errors and report.seconds < 2


@pytest.mark.timeout(60)
def test_nested_html_and_long_heading_lines_are_read_in_linear_time(tmp_path):
    from tests.retrieval_hostile import html_nested

    docs = tmp_path / "d"
    _normal_beside(docs)
    (docs / "nested.html").write_bytes(html_nested(40_000))  # 720 KB of nested spans
    # "# a", 20,000 spaces, "b": a heading regex with a lazy group backtracks cubically
    (docs / "spaces.md").write_text("# a" + " " * 20_000 + "b\n\nthe wide heading above\n")
    rag = Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"))
    assert rag.errors == []
    assert rag.search("deep")[0].file == "nested.html"
    assert rag.search("wide heading")[0].chunk.heading == "a b"
    assert rag.report.seconds < 20


def test_the_limits_on_text_and_passages_are_set_on_the_tool(tmp_path):
    docs = tmp_path / "d"
    _normal_beside(docs)
    (docs / "long.txt").write_text(filler(400))  # about 28,000 characters
    (docs / "many.md").write_text("\n\n".join(f"# Part {i}\n\n{filler(4, i)}" for i in range(40)))
    rag = Retrieval(
        files=[str(docs)], index_dir=str(tmp_path / "i"),
        max_chars_per_file=20_000, max_chunks_per_file=30,
    )  # fmt: skip
    errors = dict(rag.errors)
    assert "more than 20,000 characters" in errors["long.txt"]
    assert "over the limit of 30 per file (max_chunks_per_file)" in errors["many.md"]
    assert rag.report.indexed == ["normal.txt"]
    wider = Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"), max_chunks_per_file=50)
    assert wider.report.parsed == ["long.txt", "many.md"]  # other limits: tried again
    with pytest.raises(ConfigError, match="max_pdf_pages"):
        Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"), max_pdf_pages=0)


# -- the index lock ------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_the_index_lock_is_free_while_a_file_is_parsed(tmp_path):
    import fcntl
    import time

    from tests.retrieval_hostile import pdf_shared_slow_stream

    docs = tmp_path / "d"
    _normal_beside(docs)
    (docs / "slow.pdf").write_bytes(pdf_shared_slow_stream(4, 10_000))  # seconds to parse
    index = tmp_path / "i"
    done: list[Retrieval] = []
    worker = threading.Thread(
        target=lambda: done.append(Retrieval(files=[str(docs)], index_dir=str(index)))
    )
    worker.start()
    while not (index / ".lock").exists() and worker.is_alive():
        time.sleep(0.01)
    time.sleep(0.3)  # past reading the manifest: parsing now
    free_while_parsing = False
    fd = os.open(index / ".lock", os.O_RDWR)
    try:
        while worker.is_alive() and not free_while_parsing:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(0.02)
            else:
                free_while_parsing = worker.is_alive()
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
        worker.join()
    assert free_while_parsing
    assert done[0].report.indexed == ["normal.txt", "slow.pdf"]


@pytest.mark.timeout(60)
def test_a_lock_held_too_long_by_another_process_is_waited_for_only_so_long(corpus, tmp_path):
    import fcntl

    make(corpus, tmp_path)  # a saved index
    (corpus / "guide.txt").write_text("The lighthouse keeper is now Ingrid Ovesen.")
    fd = os.open(tmp_path / "index" / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process that hangs while holding it
    try:
        rag = make(corpus, tmp_path, lock_timeout_s=0.5)
        assert rag.report.parsed == ["guide.txt"]  # the rest reused from the last index
        assert rag.search("lighthouse keeper")[0].chunk.text.endswith("Ingrid Ovesen.")
        assert any("lock_timeout_s" in note for _, note in rag.report.notes)
    finally:
        os.close(fd)
    again = make(corpus, tmp_path)  # the lock is free: the change is saved now
    assert again.report.parsed == ["guide.txt"] and not again.report.notes


@pytest.mark.timeout(60)
def test_a_lazy_call_answers_before_the_deadline_while_indexing_goes_on(tmp_path):
    import time

    from tests.retrieval_hostile import pdf_shared_slow_stream

    docs = tmp_path / "d"
    _normal_beside(docs)
    (docs / "slow.pdf").write_bytes(pdf_shared_slow_stream(4, 10_000))  # seconds to parse
    rag = Retrieval(files=[str(docs)], index_dir=str(tmp_path / "i"), lazy=True)
    rag.timeout = 0.5  # the deadline the agent gives one call
    answers: list[float] = []

    def call() -> None:
        start = time.monotonic()
        with pytest.raises(ToolError, match="still being indexed"):
            rag.call(query="ferry departure")
        answers.append(time.monotonic() - start)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 2 and max(answers) < 2.0
    assert rag.report.indexed == ["normal.txt", "slow.pdf"]  # waits for the indexing
    assert "[1] normal.txt" in rag.call(query="ferry departure")


# -- reopening -------------------------------------------------------------------------------


def test_reopening_an_unchanged_index_looks_at_each_file_once(tmp_path):
    from qwen_agent.tools.retrieval.index import Tokenizer
    from qwen_agent.tools.retrieval.store import refresh_index

    docs = tmp_path / "d"
    docs.mkdir()
    past = 1_600_000_000 * 10**9  # not "racy": size and mtime are trusted
    for i in range(300):
        (docs / f"n{i:03d}.txt").write_text(f"note {i} mentions {filler(1, i)}")
        os.utime(docs / f"n{i:03d}.txt", ns=(past, past))

    class Passes(list):
        """A list of sources that counts how often it is gone through."""

        passes = 0

        def __iter__(self):
            Passes.passes += 1
            return super().__iter__()

    sources = Passes((p.name, p) for p in sorted(docs.iterdir()))
    index, tokenizer = tmp_path / "i", Tokenizer()
    refresh_index(index, sources, tokenizer)
    manifest = (index / "manifest.json").stat()
    Passes.passes = 0
    _, report = refresh_index(index, sources, tokenizer)
    assert len(report.reused) == 300 and not report.rebuilt
    assert Passes.passes <= 2  # not once per stored file
    after = (index / "manifest.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (manifest.st_ino, manifest.st_mtime_ns)
