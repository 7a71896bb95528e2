"""Parsing in a worker process that is killed at the deadline.

The html, pdf and docx parsers are third-party code run on untrusted bytes; one small file
can make them spin for minutes or take gigabytes (pages sharing one huge content stream, a
zip that expands a thousandfold, nesting that a parser handles in quadratic time). The
budget in :mod:`.parsers` stops them between pages and paragraphs, but not inside one
slow step, so :class:`ParseWorker` runs them in a child Python process, one file at a
time, with an address-space limit, and kills it when a file takes longer than its deadline
(the next file gets a fresh process). Plain-text files do not come here: their parser is
linear and bounded by the file's size.

The protocol on the child's stdin and stdout: a request is a 4-byte big-endian length and
a JSON header (``name``, ``size``, ``limits``), then ``size`` bytes of the file; a reply is
a 4-byte length and JSON: ``{"blocks": [[text, page, heading], ...], "notes": [...]}``
or ``{"error": "..."}``. JSON, not pickle: the child handles hostile input.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import struct
import subprocess
import sys
import threading
from dataclasses import asdict
from typing import IO, Any

from .parsers import Block, DocumentError, Parsed, ParseLimits, parse_document, too_slow

__all__ = ["ParseWorker", "MEMORY_LIMIT_MB"]

log = logging.getLogger("qwen_agent.tools.retrieval")

#: the child's address-space limit (where the OS has one): a backstop, since the limits
#: on text and unzipped size keep real documents far below it
MEMORY_LIMIT_MB = 3072
#: seconds past the deadline the parent waits for the child's own "too slow" reply
_GRACE_S = 1.0
_HEADER = struct.Struct(">I")


class ParseWorker:
    """A child process that parses one file at a time; started on first use, restarted
    after a kill. ``close()`` (or ``with``) ends it."""

    def __init__(self, memory_limit_mb: int = MEMORY_LIMIT_MB) -> None:
        self.memory_limit_mb = memory_limit_mb
        self._proc: subprocess.Popen[bytes] | None = None
        self._replies: queue.Queue[bytes | None] = queue.Queue()

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parse(self, name: str, data: bytes, limits: ParseLimits) -> Parsed:
        """What :func:`~.parsers.parse_document` returns for the file, parsed in the child.
        DocumentError for a bad file, one over a limit, or one the child died on."""
        header = json.dumps({"name": name, "size": len(data), "limits": asdict(limits)})
        for attempt in (1, 2):  # a child that died idle (killed from outside) is restarted
            proc = self._start()
            try:
                _send(proc.stdin, header.encode(), data)
                break
            except (BrokenPipeError, OSError):
                self._kill()
                if attempt == 2:
                    raise DocumentError(f"{name}: the parser process could not start") from None
        wait = None if limits.timeout_s is None else limits.timeout_s + _GRACE_S
        try:
            reply = self._replies.get(timeout=wait)
        except queue.Empty:
            self._kill()
            raise DocumentError(f"{name}: {too_slow(limits.timeout_s)}") from None
        if reply is None:  # the child died: out of memory, or a crash in a C library
            code = self._kill()
            raise DocumentError(
                f"{name}: the parser died on it (exit status {code}; out of memory?)"
            )
        answer = json.loads(reply)
        if "error" in answer:
            raise DocumentError(answer["error"])
        blocks = [Block(t, p, h, o) for t, p, h, o in answer["blocks"]]
        return Parsed(blocks, list(answer["notes"]))

    def close(self) -> None:
        """End the child (it exits when its stdin closes; killed if it does not)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._kill()
        code = (  # the parent's import path, so the child imports the same qwen_agent
            "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
            "from qwen_agent.tools.retrieval.isolate import _serve; _serve(int(sys.argv[2]))"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(sys.path), str(self.memory_limit_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self._proc = proc
        self._replies = queue.Queue()
        threading.Thread(
            target=_read_replies, args=(proc.stdout, self._replies), daemon=True
        ).start()
        return proc

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        return code


def _send(stream: IO[bytes] | None, header: bytes, data: bytes) -> None:
    if stream is None:
        raise BrokenPipeError
    stream.write(_HEADER.pack(len(header)) + header)
    stream.write(data)
    stream.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_replies(stream: IO[bytes] | None, replies: queue.Queue[bytes | None]) -> None:
    """In a thread: each reply of the child onto ``replies``; None when it ends."""
    try:
        while stream is not None:
            head = _read_exact(stream, _HEADER.size)
            body = None if head is None else _read_exact(stream, _HEADER.unpack(head)[0])
            replies.put(body)
            if body is None:
                return
    except (OSError, ValueError):  # closed under us by a kill
        replies.put(None)


# -- the child ---------------------------------------------------------------------------


def _serve(memory_limit_mb: int) -> None:
    """The child's loop: read a request, parse, reply; exit when stdin closes."""
    _limit_memory(memory_limit_mb)
    logging.disable(logging.CRITICAL)  # pypdf's warnings about odd files: not ours to show
    requests = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library that prints must not corrupt the replies
    while True:
        head = _read_exact(requests, _HEADER.size)
        if head is None:
            return
        header = json.loads(_read_exact(requests, _HEADER.unpack(head)[0]) or b"{}")
        data = _read_exact(requests, header["size"]) or b""
        reply: dict[str, Any]
        try:
            parsed = parse_document(header["name"], data, ParseLimits(**header["limits"]))
        except DocumentError as exc:
            reply = {"error": str(exc)}
        else:
            blocks = [[b.text, b.page, b.heading, b.offset] for b in parsed.blocks]
            reply = {"blocks": blocks, "notes": parsed.notes}
        del data
        body = json.dumps(reply, ensure_ascii=False).encode()
        out.write(_HEADER.pack(len(body)) + body)
        out.flush()


def _limit_memory(megabytes: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: the deadline only
        return
    limit = megabytes * 2**20
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or soft > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        pass
