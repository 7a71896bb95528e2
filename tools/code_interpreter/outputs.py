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

__all__ = ["ExecutionResult", "ErrorInfo", "OutputCollector", "strip_ansi", "truncate_middle"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# traceback entries that say nothing to the model: the rule line, IPython's own frames
_NOISE = re.compile(r"^(-{20,}\s*$|File [^\n]*/(IPython|ipykernel)/)")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


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
    """What one execution produced, bounded; ``notes`` say what the sandbox did about it."""

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
        parts.extend(f"[{n}]" for n in self.notes)
        return "\n".join(parts) if parts else "(no output)"

    def to_content(self) -> list[TextItem | ImageItem]:
        items: list[TextItem | ImageItem] = [TextItem(text=self.text)]
        items.extend(ImageItem(image=p) for p in self.images)
        return items


class OutputCollector:
    """Accumulates one execution's IOPub messages within ``limits``.

    Images are written to ``image_dir`` (a directory the sandbox cannot see) as
    ``<prefix>-<n>.png``. :attr:`flooded` turns true once more than ``limits.flood_chars``
    characters arrived: the caller then interrupts the execution.
    """

    def __init__(self, limits: OutputLimits, image_dir: str | None, prefix: str) -> None:
        self.limits = limits
        self.image_dir = image_dir
        self.prefix = prefix
        self._out = _HeadTail(limits.max_chars)
        self._err = _HeadTail(max(limits.max_chars // 2, 100))
        self._received = 0
        self._result: str | None = None
        self._error: ErrorInfo | None = None
        self._images: list[str] = []
        self._images_dropped = 0
        self._notes: list[str] = []

    @property
    def flooded(self) -> bool:
        return self._received > self.limits.flood_chars

    def add(self, msg: dict[str, Any]) -> None:
        """Take one IOPub message (others than these types are ignored)."""
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type")
        content = msg.get("content") or {}
        if kind == "stream":
            self._stream(content.get("name", "stdout"), str(content.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            self._data(content.get("data") or {}, is_result=kind == "execute_result")
        elif kind == "error":
            self._set_error(content)

    def note(self, text: str) -> None:
        self._notes.append(text)

    # -- pieces ---------------------------------------------------------------------------
    def _stream(self, name: str, text: str) -> None:
        self._received += len(text)
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
                self._result = text
            else:
                self._stream("stdout", text + "\n")
        elif png is None and data:
            kinds = ", ".join(sorted(data))
            self._stream("stdout", f"[output of type {kinds} not shown]\n")

    def _set_error(self, content: dict[str, Any]) -> None:
        frames = [strip_ansi(str(x)).rstrip("\n") for x in content.get("traceback") or []]
        text = "\n".join(f for f in frames if not _NOISE.match(f))
        all_lines = text.splitlines()
        keep = self.limits.max_traceback_lines
        if len(all_lines) > keep:
            text = f"[... {len(all_lines) - keep} traceback lines cut ...]\n" + "\n".join(
                all_lines[-keep:]
            )
        self._error = ErrorInfo(str(content.get("ename", "")), str(content.get("evalue", "")), text)

    def _save_png(self, b64: str) -> None:
        if self.image_dir is None:
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
        path = os.path.join(self.image_dir, f"{self.prefix}-{len(self._images) + 1}.png")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
        except OSError as exc:
            self._notes.append(f"an image could not be saved ({exc.strerror})")
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
        return ExecutionResult(
            stdout=out,
            stderr=err,
            result=result,
            error=self._error,
            images=list(self._images),
            notes=notes,
            truncated=bool(cut),
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
            return head + self.tail, 0
        return f"{head}\n[... {self.cut:,} characters of output cut ...]\n{self.tail}", self.cut
