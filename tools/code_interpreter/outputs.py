"""Turning a kernel's IOPub messages into what the model sees.

:class:`OutputCollector` takes the messages of one execution (stdout, stderr, results,
displays, errors), keeps a bounded amount of text, saves PNG images as files and gives an
:class:`ExecutionResult`, whose :meth:`~ExecutionResult.to_content` is the tool's answer.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from typing import Any

from qwen_agent.messages import ImageItem, TextItem

from .config import OutputLimits

__all__ = [
    "ExecutionResult",
    "ErrorInfo",
    "ImageStore",
    "OutputCollector",
    "clean_text",
    "strip_ansi",
    "truncate_middle",
]

# terminal escape sequences: CSI (ESC [ or the 8-bit CSI), OSC / DCS / SOS / PM / APC
# strings up to their terminator (BEL or ST; or the end of the text), two-byte escapes
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# what is left that a terminal acts on or that hides text: C0 controls but tab and newline,
# DEL, C1 controls, the Unicode bidirectional marks, overrides and isolates, invisible
# format characters (zero-width, word joiner, BOM, interlinear annotation), line and
# paragraph separators, and the tag characters
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    "\ufff9-\ufffb\U000e0000-\U000e007f]"
)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# traceback entries that say nothing to the model: the rule line, IPython's own frames
_NOISE = re.compile(r"^(-{20,}\s*$|File [^\n]*/(IPython|ipykernel)/)")
_MAX_NOTE_CHARS = 300
_MAX_NOTES = 20
_MAX_ENAME_CHARS = 200


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves, OSC strings)."""
    return _ANSI.sub("", text)


def clean_text(text: str) -> str:
    """``text`` safe to show on a terminal and to a model: escape sequences removed, line
    ends made ``\\n`` (a lone carriage return too), other control characters removed."""
    text = _ANSI.sub("", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def truncate_middle(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to about ``limit`` characters (head and tail kept); how many were cut."""
    if len(text) <= limit:
        return text, 0
    head = limit * 3 // 4
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut:,} characters of output cut ...]\n{text[-tail:]}", cut


@dataclass
class ErrorInfo:
    """An exception raised by the executed code."""

    ename: str
    evalue: str
    traceback: str = ""


@dataclass
class ExecutionResult:
    """What one execution produced, bounded; ``notes`` say what the sandbox did about it.

    :attr:`text` is at most ``max_chars`` characters (the middle of a longer one is cut).
    """

    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: ErrorInfo | None = None
    images: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    truncated: bool = False
    timed_out: bool = False
    kernel_restarted: bool = False
    duration: float = 0.0
    max_chars: int = 40_000

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out and not self.kernel_restarted

    @property
    def text(self) -> str:
        """All of the result as text, as the model reads it."""
        parts = []
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("stderr:\n" + self.stderr.rstrip("\n"))
        if self.result is not None:
            parts.append(self.result)
        if self.error is not None:
            tb = self.error.traceback or f"{self.error.ename}: {self.error.evalue}"
            parts.append("Error:\n" + tb.rstrip("\n"))
        if self.images:
            parts.append(f"[{len(self.images)} image(s) attached]")
        parts.extend(f"[{n}]" for n in _collapse(self.notes))
        text = "\n".join(parts) if parts else "(no output)"
        return truncate_middle(text, max(self.max_chars - 64, 100))[0]  # 64: the cut's note

    def to_content(self) -> list[TextItem | ImageItem]:
        items: list[TextItem | ImageItem] = [TextItem(text=self.text)]
        items.extend(ImageItem(image=p) for p in self.images)
        return items


def _collapse(notes: list[str]) -> list[str]:
    """Notes with repeats counted once ("... (x3)"), each cut to a readable length, at most
    ``_MAX_NOTES`` of them."""
    counts: dict[str, int] = {}
    for n in notes:
        n = clean_text(str(n))
        if len(n) > _MAX_NOTE_CHARS:
            n = n[: _MAX_NOTE_CHARS - 3] + "..."
        counts[n] = counts.get(n, 0) + 1
    out = [f"{n} (x{c})" if c > 1 else n for n, c in counts.items()]
    if len(out) > _MAX_NOTES:
        out = out[: _MAX_NOTES - 1] + [f"{len(out) - _MAX_NOTES + 1} more notes not shown"]
    return out


class ImageStore:
    """Where a session's images are saved, within a byte quota of their own.

    The directory is the host's (the sandbox cannot see it, and images do not take the
    code's disk space). When a new image would pass ``max_bytes``, the oldest images of
    earlier executions are deleted first; images of the running execution are never
    deleted for a newer one (the newer one is dropped instead, with a note).
    """

    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._files: list[tuple[str, int, str]] = []  # (path, size, execution prefix)
        self.used = 0

    def save(self, raw: bytes, prefix: str, n: int) -> tuple[str | None, str | None]:
        """Write ``raw`` as ``<prefix>-<n>.png``; (path, None) or (None, why not)."""
        if len(raw) > self.max_bytes:
            return None, "an image larger than the session's image quota was not kept"
        while self.used + len(raw) > self.max_bytes:
            old = next((f for f in self._files if f[2] != prefix), None)
            if old is None:
                return None, "an image was not kept: this execution's images fill the quota"
            self._files.remove(old)
            self.used -= old[1]
            try:
                os.unlink(old[0])
            except OSError:
                pass
        path = os.path.join(self.directory, f"{prefix}-{n}.png")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
        except OSError as exc:
            return None, f"an image could not be saved ({exc.strerror})"
        self._files.append((path, len(raw), prefix))
        self.used += len(raw)
        return path, None


class OutputCollector:
    """Accumulates one execution's IOPub messages within ``limits``.

    Images are saved in ``images`` (an :class:`ImageStore`, or a directory the sandbox
    cannot see, given a store with the session quota of ``limits``) as
    ``<prefix>-<n>.png``. :attr:`flooded` turns true once more than ``limits.flood_chars``
    characters or ``limits.flood_messages`` messages arrived: the caller then interrupts
    the execution. Every message is checked: one of the wrong shape is counted and
    ignored, never raised.
    """

    def __init__(self, limits: OutputLimits, images: ImageStore | str | None, prefix: str) -> None:
        self.limits = limits
        if isinstance(images, str):
            images = ImageStore(images, limits.image_store_mb * 2**20)
        self.images = images
        self.prefix = prefix
        self._out = _HeadTail(limits.max_chars)
        self._err = _HeadTail(max(limits.max_chars // 2, 100))
        self._received = 0
        self._messages = 0
        self._malformed = 0
        self._result: str | None = None
        self._error: ErrorInfo | None = None
        self._images: list[str] = []
        self._images_dropped = 0
        self._notes: list[str] = []

    @property
    def flooded(self) -> bool:
        return (
            self._received > self.limits.flood_chars or self._messages > self.limits.flood_messages
        )

    def count(self) -> None:
        """Count one message received for this execution (of any kind, shown or not)."""
        self._messages += 1

    def malformed(self) -> None:
        """Count a message that could not be read (bad signature, wrong shape)."""
        self._malformed += 1
        self.count()

    def add(self, msg: Any) -> None:
        """Take one IOPub message (counted); types other than output are ignored, and one
        of the wrong shape is counted as malformed."""
        self._messages += 1
        if not isinstance(msg, dict):
            self._malformed += 1
            return
        kind = msg.get("msg_type")
        header = msg.get("header")
        if kind is None and isinstance(header, dict):
            kind = header.get("msg_type")
        content = msg.get("content")
        if content is None:
            content = {}
        if not isinstance(kind, str) or not isinstance(content, dict):
            self._malformed += 1
            return
        if kind == "stream":
            name, text = content.get("name", "stdout"), content.get("text", "")
            if not isinstance(text, str) or name not in ("stdout", "stderr"):
                self._malformed += 1
                return
            self._stream(name, text)
        elif kind in ("execute_result", "display_data", "update_display_data"):
            data = content.get("data")
            if not isinstance(data, dict):
                self._malformed += 1
                return
            self._data(data, is_result=kind == "execute_result")
        elif kind == "error":
            self._set_error(content)

    def note(self, text: str) -> None:
        self._notes.append(text)

    # -- pieces ---------------------------------------------------------------------------
    def _stream(self, name: str, text: str) -> None:
        self._received += len(text)
        # kept raw and cleaned once at the end: only what is kept is cleaned (a flood of
        # escape bytes costs nothing), and a sequence split between messages is whole
        (self._err if name == "stderr" else self._out).add(text)

    def _data(self, data: dict[str, Any], is_result: bool) -> None:
        png = data.get("image/png")
        if isinstance(png, str):
            self._save_png(png)
        text = data.get("text/plain")
        if isinstance(text, str):
            if png is not None and text.startswith("<Figure size"):
                return  # matplotlib's repr next to the picture says nothing
            self._received += len(text)
            if is_result:
                self._result = clean_text(truncate_middle(text, self.limits.max_chars)[0])
            else:
                self._stream("stdout", text + "\n")
        elif png is None and data:
            kinds = ", ".join(sorted(str(k)[:40] for k in list(data)[:10]))
            self._stream("stdout", f"[output of type {kinds} not shown]\n")

    def _set_error(self, content: dict[str, Any]) -> None:
        limit = self.limits.max_chars // 2
        raw_tb = content.get("traceback")
        frames = raw_tb if isinstance(raw_tb, list) else []
        lines: list[str] = []
        size = 0
        for x in frames[-(self.limits.max_traceback_lines * 4) :]:
            frame = clean_text(truncate_middle(str(x), limit)[0]).rstrip("\n")
            if _NOISE.match(frame):
                continue
            lines.append(frame)
            size += len(frame)
        text = "\n".join(lines)
        all_lines = text.splitlines()
        keep = self.limits.max_traceback_lines
        if len(all_lines) > keep:
            text = f"[... {len(all_lines) - keep} traceback lines cut ...]\n" + "\n".join(
                all_lines[-keep:]
            )
        text = truncate_middle(text, limit)[0]
        ename = clean_text(str(content.get("ename", "")))
        if len(ename) > _MAX_ENAME_CHARS:
            ename = ename[: _MAX_ENAME_CHARS - 3] + "..."
        evalue = clean_text(truncate_middle(str(content.get("evalue", "")), limit // 2)[0])
        self._received += size
        self._error = ErrorInfo(ename, evalue, text)

    def _save_png(self, b64: str) -> None:
        if self.images is None:
            return
        if len(self._images) >= self.limits.max_images:
            self._images_dropped += 1
            return
        if len(b64) > self.limits.max_image_bytes * 4 // 3 + 4:
            self._notes.append("an image larger than the limit was not kept")
            return
        try:
            raw = base64.b64decode(b64, validate=False)
        except (binascii.Error, ValueError):
            self._notes.append("an image that is not valid base64 was not kept")
            return
        if not raw.startswith(_PNG_MAGIC):
            self._notes.append("an image that is not a PNG was not kept")
            return
        path, why = self.images.save(raw, self.prefix, len(self._images) + 1)
        if path is None:
            self._notes.append(str(why))
            return
        self._images.append(path)

    # -- result ---------------------------------------------------------------------------
    def result(self) -> ExecutionResult:
        out, c1 = self._out.text()
        err, c2 = self._err.text()
        result, c3 = (
            truncate_middle(self._result, self.limits.max_chars // 2)
            if self._result
            else (self._result, 0)
        )
        cut = c1 + c2 + c3
        notes = list(self._notes)
        if cut:
            notes.insert(0, f"output truncated: {cut:,} characters not shown")
        if self._images_dropped:
            notes.append(f"{self._images_dropped} more image(s) not kept")
        if self._malformed:
            notes.append(f"{self._malformed} malformed message(s) from the kernel were ignored")
        return ExecutionResult(
            stdout=out,
            stderr=err,
            result=result,
            error=self._error,
            images=list(self._images),
            notes=notes,
            truncated=bool(cut),
            max_chars=self.limits.max_chars * 2,
        )


class _HeadTail:
    """The first 3/4 and the last 1/4 of ``limit`` characters of a stream, in bounded memory."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit * 3 // 4
        self.tail_limit = limit - self.head_limit
        self.head: list[str] = []
        self.head_len = 0
        self.tail = ""
        self.cut = 0

    def add(self, text: str) -> None:
        room = self.head_limit - self.head_len
        if room > 0:
            self.head.append(text[:room])
            self.head_len += min(room, len(text))
            text = text[room:]
        if text:
            joined = self.tail + text
            self.cut += max(0, len(joined) - self.tail_limit)
            self.tail = joined[-self.tail_limit :]

    def text(self) -> tuple[str, int]:
        head = "".join(self.head)
        if not self.cut:
            return clean_text(head + self.tail), 0
        head, tail = clean_text(head), clean_text(self.tail)
        return f"{head}\n[... {self.cut:,} characters of output cut ...]\n{tail}", self.cut
