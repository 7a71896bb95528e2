"""A size guard on the wire between the host and its kernels' zmq sockets.

zmq's ``MAXMSGSIZE`` bounds each part of a message, not the message: the kernel can send
one message of a thousand 8 MB parts (all views of one buffer, so it costs the kernel 8 MB)
and the host's zmq would hold all of it before handing any to us. So the host does not
connect to the kernel's sockets directly: it connects to :class:`WireGuard`'s listening
sockets, which relay the bytes to and from the kernel's ``ipc://`` sockets and read the
kernel's side as ZMTP 3 frames (a 64-byte greeting, then frames of a flags byte and a 1-
or 8-byte length). When one message's parts pass ``max_message_bytes``, or the stream is
not ZMTP 3, the connection is cut at once: the host's zmq drops the partial message (so it
never holds more than the limit), reconnects, and the kernel sees a new peer. The kernel's
client notices the disconnect (a zmq socket monitor) and tells the model.

The relay runs in a child process of its own (:class:`WireProcess`, one per pool): it then
never waits for the host's GIL, and each hop costs a process wake-up, not a thread switch
in a busy interpreter. In it one thread relays every connection, with non-blocking sockets
and bounded buffers (a slow reader stops the reads from its peer, never the thread). This
file imports only the standard library: the child runs it by path.
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["WireGuard", "WireProcess", "FrameMeter"]

log = logging.getLogger(__name__)

_GREETING = 64
_MORE, _LONG, _COMMAND = 0x01, 0x02, 0x04
_MAX_COMMAND = 65_536  # READY, SUBSCRIBE, PING: small
_CHUNK = 256 * 1024
_BUFFER_LIMIT = 2**20  # bytes waiting for a slow reader before its peer is not read
_CONNECT_WAIT = 60.0  # seconds a host connection waits for its kernel's socket


class FrameMeter:
    """Follows a ZMTP 3 byte stream and says when one message grows past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._greeting = _GREETING
        self._head = b""  # a frame header being read
        self._body = 0  # bytes of the current frame's body still to come
        self._more = False  # the current frame is not the message's last
        self._command = False
        self._total = 0  # bytes of the current message so far

    def feed(self, data: bytes) -> str | None:
        """Take the next bytes; None while they are fine, else why the stream is cut."""
        i, why = self._greet(data)
        if why is None and self._head:
            i, why = self._finish_head(data, i)
        if why is not None:
            return why
        n = len(data)
        body, total, limit = self._body, self._total, self.limit
        more, command = self._more, self._command
        while i < n:
            if body:
                step = min(body, n - i)
                i += step
                body -= step
                if not body and not more and not command:
                    total = 0
                continue
            flags = data[i]
            need = 9 if flags & _LONG else 2
            if n - i < need:
                self._head = bytes(data[i:])
                i = n
                break
            if flags & ~(_MORE | _LONG | _COMMAND):
                return "the kernel sent a frame with unknown flags"
            size = int.from_bytes(data[i + 1 : i + 9], "big") if flags & _LONG else data[i + 1]
            i += need
            command = bool(flags & _COMMAND)
            if command:
                if size > _MAX_COMMAND:
                    return "the kernel sent an oversized ZMTP command"
            else:
                more = bool(flags & _MORE)
                total += size
                if total > limit:
                    return f"a message from the kernel was over {limit:,} bytes"
            body = size
            if not size and not more and not command:
                total = 0
        self._body, self._total, self._more, self._command = body, total, more, command
        return None

    def _greet(self, data: bytes) -> tuple[int, str | None]:
        """Skip the greeting; check its signature byte and the major version (3)."""
        if not self._greeting:
            return 0, None
        done = _GREETING - self._greeting  # greeting bytes seen before this read
        if done == 0 and data[0] != 0xFF:
            return 0, "the kernel's stream is not ZMTP"
        at = 10 - done  # the major version's place in this read
        if 0 <= at < len(data) and data[at] < 3:
            return 0, "the kernel's stream is not ZMTP 3"
        i = min(self._greeting, len(data))
        self._greeting -= i
        return i, None

    def _finish_head(self, data: bytes, i: int) -> tuple[int, str | None]:
        """Finish a frame header that was split across reads."""
        while i < len(data) and self._head:
            self._head += data[i : i + 1]
            i += 1
            if len(self._head) == (9 if self._head[0] & _LONG else 2):
                head, self._head = self._head, b""
                why = self._frame(head[0], head)
                if why:
                    return i, why
        return i, None

    def _frame(self, flags: int, head: bytes) -> str | None:
        """A header that was split across reads, now whole."""
        if flags & ~(_MORE | _LONG | _COMMAND):
            return "the kernel sent a frame with unknown flags"
        size = int.from_bytes(head[1:9], "big") if flags & _LONG else head[1]
        self._command = bool(flags & _COMMAND)
        if self._command:
            if size > _MAX_COMMAND:
                return "the kernel sent an oversized ZMTP command"
        else:
            self._more = bool(flags & _MORE)
            self._total += size
            if self._total > self.limit:
                return f"a message from the kernel was over {self.limit:,} bytes"
        self._body = size
        if not size and not self._more and not self._command:
            self._total = 0
        return None


class _Pair:
    """An accepted host connection and its connection to the kernel's socket."""

    def __init__(self, key: str, host: socket.socket, kernel: socket.socket, limit: int) -> None:
        self.key = key
        self.host, self.kernel = host, kernel
        self.meter = FrameMeter(limit)
        self.out = {host: bytearray(), kernel: bytearray()}  # what waits to be written to it
        self.events = {host: selectors.EVENT_READ, kernel: selectors.EVENT_READ}
        self.closed = False

    def peer(self, sock: Any) -> socket.socket:
        return self.kernel if sock is self.host else self.host


class WireGuard:
    """Relays host connections on ``listen_prefix-PORT`` to ``target_prefix-PORT``."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._todo: list[Callable[[], None]] = []
        self._listeners: dict[str, list[tuple[socket.socket, str, str]]] = {}
        self._pairs: dict[str, set[_Pair]] = {}
        self._limits: dict[str, int] = {}
        self._pending: list[tuple[str, socket.socket, str, float]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="qwen-ci-wire", daemon=True)
        self._thread.start()

    # -- API (any thread) -----------------------------------------------------------------
    def listen(
        self, key: str, listen_prefix: str, target_prefix: str, ports: list[int], limit: int
    ) -> None:
        """Listen on ``listen_prefix-PORT`` for each port; relay to ``target_prefix-PORT``."""
        made = []
        try:
            for port in ports:
                path = f"{listen_prefix}-{port}"
                if len(path.encode()) > 100:
                    raise OSError(f"socket path too long for AF_UNIX: {path}")
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                lsock.bind(path)
                os.chmod(path, 0o600)
                lsock.listen(16)
                lsock.setblocking(False)
                made.append((lsock, path, f"{target_prefix}-{port}"))
        except BaseException:
            for lsock, _, _ in made:
                lsock.close()
            raise

        def register() -> None:
            self._limits[key] = limit
            self._listeners.setdefault(key, []).extend(made)
            for entry in made:
                self._sel.register(entry[0], selectors.EVENT_READ, ("listen", (key, entry)))

        self._call(register)

    def forget(self, key: str) -> None:
        """Close the listeners and connections of ``key`` (waits for the relay thread)."""
        done = threading.Event()

        def drop() -> None:
            for lsock, path, _ in self._listeners.pop(key, []):
                self._unregister(lsock)
                lsock.close()
                try:
                    os.unlink(path)
                except OSError:
                    pass
            for pair in list(self._pairs.pop(key, set())):
                self._close(pair)
            self._limits.pop(key, None)
            done.set()

        self._call(drop)
        if threading.current_thread() is not self._thread:
            done.wait(10)

    def close(self) -> None:
        def stop() -> None:
            self._stop = True

        for key in list(self._listeners):
            self.forget(key)
        self._call(stop)
        self._thread.join(timeout=10)
        self._wake_w.close()

    # -- the relay thread -----------------------------------------------------------------
    def _call(self, fn: Callable[[], None]) -> None:
        if threading.current_thread() is self._thread:
            fn()
            return
        with self._lock:
            self._todo.append(fn)
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop:
            if self._pending:
                self._connect_pending()
            for sk, mask in self._sel.select(timeout=0.01 if self._pending else 1.0):
                kind, data = sk.data
                if sk.fileobj.fileno() < 0:  # closed by an earlier event of this round
                    continue
                try:
                    if kind == "wake":
                        self._wake()
                    elif kind == "listen":
                        self._accept(*data)
                    else:
                        self._io(data, sk.fileobj, mask)
                except Exception:  # a relay error must not stop the thread: cut that pair
                    log.exception("wire guard error")
                    if kind == "pair":
                        self._close(data)
        self._sel.close()
        self._wake_r.close()

    def _wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            todo, self._todo = self._todo, []
        for fn in todo:
            fn()

    def _accept(self, key: str, entry: tuple[socket.socket, str, str]) -> None:
        lsock, _, target = entry
        try:
            host, _ = lsock.accept()
        except OSError:  # nothing to accept after all, or the listener was just closed
            return
        self._pending.append((key, host, target, time.monotonic() + _CONNECT_WAIT))
        self._connect_pending()

    def _connect_pending(self) -> None:
        """Connect waiting host connections to their kernel sockets once those exist (a
        kernel binds them a moment after it starts); give up on one after a while."""
        still = []
        for key, host, target, until in self._pending:
            if key not in self._listeners:  # forgotten meanwhile
                host.close()
                continue
            kernel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            kernel.setblocking(False)  # a full backlog answers EAGAIN: never block the relay
            try:
                kernel.connect(target)  # a local socket: connects at once or fails
            except OSError:
                kernel.close()
                if time.monotonic() < until:
                    still.append((key, host, target, until))
                else:
                    host.close()
                continue
            self._relay(key, host, kernel)
        self._pending = still

    def _relay(self, key: str, host: socket.socket, kernel: socket.socket) -> None:
        host.setblocking(False)
        kernel.setblocking(False)
        pair = _Pair(key, host, kernel, self._limits.get(key, 2**62))
        self._pairs.setdefault(key, set()).add(pair)
        self._sel.register(host, selectors.EVENT_READ, ("pair", pair))
        self._sel.register(kernel, selectors.EVENT_READ, ("pair", pair))

    def _io(self, pair: _Pair, sock: socket.socket, mask: int) -> None:
        if pair.closed:
            return
        if mask & selectors.EVENT_WRITE:
            self._flush(pair, sock)
        if pair.closed or not mask & selectors.EVENT_READ:
            return
        try:
            data = sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(pair)
            return
        if sock is pair.kernel:
            why = pair.meter.feed(data)
            if why:
                log.info("cut a connection of %s: %s", pair.key, why)
                self._close(pair)
                return
        dest = pair.peer(sock)
        buf = pair.out[dest]
        if not buf:  # the usual case: straight through, no copy
            try:
                n = dest.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._close(pair)
                return
            data = data[n:]
            if not data:
                return
        buf += data
        self._flush(pair, dest)

    def _flush(self, pair: _Pair, dest: socket.socket) -> None:
        buf = pair.out[dest]
        while buf:
            try:
                n = dest.send(buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                    log.debug("wire guard send failed: %s", exc)
                self._close(pair)
                return
            del buf[:n]
        self._update(pair)

    def _update(self, pair: _Pair) -> None:
        """Read a side unless its peer's buffer is full; write a side that has a buffer."""
        for sock in (pair.host, pair.kernel):
            events = 0
            if len(pair.out[pair.peer(sock)]) < _BUFFER_LIMIT:
                events |= selectors.EVENT_READ
            if pair.out[sock]:
                events |= selectors.EVENT_WRITE
            if events == pair.events.get(sock):
                continue
            if pair.events.get(sock):
                self._unregister(sock)
            if events:
                self._sel.register(sock, events, ("pair", pair))
            pair.events[sock] = events

    def _unregister(self, sock: socket.socket) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _close(self, pair: _Pair) -> None:
        if pair.closed:
            return
        pair.closed = True
        for sock in (pair.host, pair.kernel):
            self._unregister(sock)
            sock.close()
        self._pairs.get(pair.key, set()).discard(pair)


class WireProcess:
    """:class:`WireGuard` in a child process, driven over a pipe (same ``listen`` and
    ``forget``). The child exits when the pipe closes (this process ended); if it dies,
    :meth:`ensure` starts a new one and lays every listener again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listening: dict[str, dict[str, Any]] = {}
        self._proc: Any = None
        self._start()

    def _start(self) -> None:
        import subprocess
        import sys

        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-B", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},
            close_fds=True,
        )

    def alive(self) -> bool:
        return self._proc.poll() is None

    def ensure(self) -> bool:
        """Restart a dead relay with all its listeners; True if it had to."""
        with self._lock:
            if self.alive():
                return False
            log.warning("the wire guard process exited (%s); starting a new one",
                        self._proc.returncode)  # fmt: skip
            self._start()
            for command in self._listening.values():
                self._send(command)
            return True

    def _send(self, command: dict[str, Any]) -> None:
        import json

        if not self.alive():
            raise OSError(f"the wire guard process exited ({self._proc.returncode})")
        try:
            self._proc.stdin.write(json.dumps(command).encode() + b"\n")
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline().decode().strip()
        except (OSError, ValueError) as exc:
            raise OSError(f"the wire guard process is gone: {exc}") from None
        if answer != "ok":
            raise OSError(answer or "the wire guard process did not answer")

    def listen(
        self, key: str, listen_prefix: str, target_prefix: str, ports: list[int], limit: int
    ) -> None:
        command = dict(op="listen", key=key, listen=listen_prefix, target=target_prefix,
                       ports=list(ports), limit=limit)  # fmt: skip
        self.ensure()
        with self._lock:
            self._send(command)
            self._listening[key] = command

    def forget(self, key: str) -> None:
        with self._lock:
            self._listening.pop(key, None)
            try:
                self._send(dict(op="forget", key=key))
            except OSError:
                pass  # the process is gone: so are its sockets

    def close(self) -> None:
        with self._lock:
            self._listening.clear()
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=10)
        except Exception:
            self._proc.kill()
            self._proc.wait()


def _serve() -> None:
    """The child: commands on stdin, one JSON object a line; answers "ok" or the error."""
    import json
    import sys

    # no parent-death signal: it follows the thread that started us, which may end long
    # before the pool; the pipe's end (EOF on stdin) says the parent process is gone
    try:  # a hop of every message goes through here: ahead of the kernels it serves
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except OSError:
        pass
    guard = WireGuard()
    for line in sys.stdin.buffer:
        try:
            cmd = json.loads(line)
            if cmd["op"] == "listen":
                guard.listen(cmd["key"], cmd["listen"], cmd["target"], cmd["ports"], cmd["limit"])
            else:
                guard.forget(cmd["key"])
            answer = "ok"
        except Exception as exc:  # answered to the parent, which raises it
            answer = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
    guard.close()


if __name__ == "__main__":
    _serve()
