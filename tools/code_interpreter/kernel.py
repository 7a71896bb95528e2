"""One Jupyter kernel in a sandbox :class:`~.sandbox.Slot`, driven through jupyter_client.

:meth:`SandboxedKernel.execute` runs code with a wall-clock limit: past it the kernel is
interrupted (by message: bwrap does not forward signals), and if it does not stop within
the grace period, or dies (``os._exit``, a segfault, the OOM killer), it is killed and a
fresh kernel started in the same slot. What happened is written in the result's notes.
"""

from __future__ import annotations

import hmac
import json
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
from typing import Any

from qwen_agent.errors import SandboxError

from .config import OutputLimits, SandboxConfig
from .outputs import ExecutionResult, OutputCollector
from .sandbox import Slot
from .uids import kill_uid
from .wire import WireProcess

__all__ = ["SandboxedKernel"]


def _manager_class() -> type:
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpec

    class _SandboxKernelManager(KernelManager):  # type: ignore[misc]
        """Starts the kernel with the slot's command, interrupts it by message."""

        qa_slot: Slot | None = None
        #: called with the connection info once ports are chosen (the wire guard listens)
        qa_on_ports: Any = None

        @property
        def kernel_spec(self) -> Any:
            return KernelSpec(
                argv=[],
                display_name="Python (sandboxed)",
                language="python",
                interrupt_mode="message",
                env={},
            )

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            slot = self.qa_slot
            if slot is None:
                raise SandboxError("kernel manager has no sandbox slot")
            info = dict(self.get_connection_info())
            for k in ("key", "signature_scheme"):
                if isinstance(info.get(k), bytes):
                    info[k] = info[k].decode()
            if self.qa_on_ports is not None:
                self.qa_on_ports(info)
            info["ip"] = slot.inside_run_dir() + "/k"
            inside = os.path.join(slot.run_dir, "kernel.json")
            _write_private(inside, json.dumps(info), owner=slot.uid if slot.sandboxed else -1)
            return slot.kernel_command(slot.inside_run_dir() + "/kernel.json")

    return _SandboxKernelManager


_KM_CLASS: type | None = None
_KM_LOCK = threading.Lock()


def _km_class() -> type:
    global _KM_CLASS
    with _KM_LOCK:
        if _KM_CLASS is None:
            _KM_CLASS = _manager_class()
    return _KM_CLASS


class SandboxedKernel:
    """A kernel running in ``slot``; :meth:`start` must be called from a thread that lives
    as long as the kernel (the sandbox is killed when its parent thread ends)."""

    def __init__(
        self,
        slot: Slot,
        config: SandboxConfig,
        context: Any = None,
        wire: WireProcess | None = None,
        message_bytes: int = 2**62,
    ) -> None:
        self.slot = slot
        self.config = config
        self._context = context
        #: the host connects to the kernel's sockets through this guard (see wire.py)
        self._wire = wire
        self._wire_key = f"{slot.path}#{os.urandom(4).hex()}"
        self._message_bytes = message_bytes
        self._km: Any = None
        self._kc: Any = None
        self.execution_count = 0
        #: an interrupt was sent but the code ended on its own: the kernel may still raise
        #: its KeyboardInterrupt, and it must not land in the next call's code
        self._interrupt_pending = False
        self._oom_base = 0
        self._monitors: dict[str, Any] = {}
        self._poller: Any = None
        self._log_fd: int | None = None
        #: set by :meth:`kill`: the session is being closed, the kernel is not restarted
        self.closing = False

    def log_tail(self, n: int = 1500) -> str:
        """The end of the kernel's own stderr (startup errors). It is a memfd, not a file:
        a path would show in the kernel's /proc/self/fd; its size counts against the
        kernel's memory and file-size limits, as it is the kernel that writes it."""
        fd = self._log_fd
        if fd is None:
            return ""
        try:
            size = os.fstat(fd).st_size
            return os.pread(fd, n, max(0, size - n)).decode(errors="replace").strip()
        except OSError:
            return ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the kernel and wait until it answers (``config.startup_timeout``)."""
        slot = self.slot
        self._prepare_run_dir()
        self._oom_base = slot.cgroup.oom_kills() if slot.cgroup is not None else 0
        host_ip = os.path.join(slot.wire_dir if self._wire else slot.run_dir, "k")
        kw: dict[str, Any] = dict(
            transport="ipc",
            ip=host_ip,
            connection_file=os.path.join(slot.path, "kernel-host.json"),
        )
        if self._context is not None:
            kw["context"] = self._context
        km = _km_class()(**kw)
        km.qa_slot = slot
        if self._wire is not None:
            wire, key, limit = self._wire, self._wire_key, self._message_bytes

            def listen(info: dict[str, Any]) -> None:
                ports = [info[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")]
                try:
                    wire.listen(key, host_ip, os.path.join(slot.run_dir, "k"), ports, limit)
                except OSError as exc:
                    raise SandboxError(f"cannot guard the kernel's sockets: {exc}") from None

            km.qa_on_ports = listen
        self._km = km
        try:
            if self._log_fd is None:
                self._log_fd = os.memfd_create("kernel-stderr", os.MFD_CLOEXEC)
            else:
                os.ftruncate(self._log_fd, 0)
            km.start_kernel(
                # bwrap gets a bare environment and sets the kernel's with --setenv
                env=slot.environment() if not slot.sandboxed else {"PATH": "/usr/bin:/bin"},
                cwd=slot.work,
                stdout=subprocess.DEVNULL,
                stderr=self._log_fd,
            )
            # the manager's own control socket is not used (interrupts go by the client):
            # a socket nobody reads is a queue the kernel could fill
            km._close_control_socket()
            # the pool's context: its sockets carry MAXMSGSIZE and RCVHWM (see KernelPool).
            # Only shell and IOPub stay connected; control is connected for an interrupt
            # only, stdin never (allow_stdin is off)
            kc = km.client(context=self._context) if self._context is not None else km.client()
            kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
            self._kc = kc
            self._watch("iopub", kc.iopub_channel.socket)
            self._watch("shell", kc.shell_channel.socket)
            self._wait_ready(self.config.startup_timeout)
            self._lock_sockets()
            if self.config.warmup_code:
                res = self.execute(self.config.warmup_code, timeout=self.config.startup_timeout)
                if not res.ok:
                    raise SandboxError(f"the warm-up code failed: {res.text[:500]}")
        except BaseException:
            self.shutdown()
            raise

    def _prepare_run_dir(self) -> None:
        """Empty ``run/``; inside the sandbox it is root's, sticky and write-only (1733)."""
        run = self.slot.run_dir
        for name in os.listdir(run):
            p = os.path.join(run, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        if self.slot.sandboxed:
            os.chown(run, 0, 0)
            os.chmod(run, 0o1733)

    def _wait_ready(self, timeout: float) -> None:
        """Like ``wait_for_ready`` but notices a kernel that died while starting."""
        kc, deadline = self._kc, time.monotonic() + timeout
        while True:
            msg_id = kc.kernel_info()
            step_end = min(deadline, time.monotonic() + 1.0)
            while time.monotonic() < step_end:
                try:
                    reply = kc.shell_channel.get_msg(timeout=0.1)
                except queue.Empty:
                    continue
                # the reply alone is not enough: IOPub (a SUB socket) may not be connected
                # yet, and what the kernel publishes before that is lost
                if reply.get("parent_header", {}).get("msg_id") == msg_id and self._drain_iopub():
                    return
            if not self.is_alive():
                code = self.exit_code()
                raise SandboxError(
                    f"the kernel exited while starting (exit code {code}); check that "
                    f"ipykernel is installed and that the sandbox can run. Its stderr "
                    f"ends with:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise SandboxError(f"the kernel did not answer within {timeout:g} s")

    def _drain_iopub(self) -> bool:
        """Empty the IOPub queue; True if anything was in it."""
        got = False
        for _ in range(1000):
            try:
                self._kc.iopub_channel.get_msg(timeout=0.05 if not got else 0.01)
            except queue.Empty:
                break
            got = True
        return got

    def _lock_sockets(self) -> None:
        """Make the kernel's socket files root's: in the sticky ``run/`` the code can then
        not swap them for symlinks that would send the host's reconnects elsewhere."""
        if not self.slot.sandboxed:
            return
        for i in range(1, 64):
            p = os.path.join(self.slot.run_dir, f"k-{i}")
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if not stat.S_ISSOCK(st.st_mode):
                raise SandboxError(f"unexpected file in the kernel's socket directory: {p}")
            os.lchown(p, 0, 0)

    # Below, no jupyter_client call that runs an event loop (its sync wrappers make one per
    # calling thread): these run in the agent's threads.
    def _process(self) -> Any:
        prov = getattr(self._km, "provisioner", None)
        return getattr(prov, "process", None)

    def is_alive(self) -> bool:
        proc = self._process()
        return proc is not None and proc.poll() is None

    def exit_code(self) -> int | None:
        proc = self._process()
        return proc.poll() if proc is not None else None

    def interrupt(self) -> None:
        """Ask the kernel to interrupt itself (an ``interrupt_request`` on control). The
        control socket is opened for this and closed after (nothing it receives is read)."""
        kc = self._kc
        if kc is not None and self.is_alive():
            ch = kc.control_channel
            ch.send(kc.session.msg("interrupt_request", content={}))
            ch.socket.close(linger=1000)  # the request still goes out
            ch.socket = None
            kc._control_channel = None

    def kill(self) -> None:
        """Kill the kernel's processes now, from any thread (a running :meth:`execute`
        then sees it die and returns); :meth:`shutdown` still closes the channels."""
        if self.slot.sandboxed:
            kill_uid(self.slot.uid)
        proc = self._process()
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()

    def shutdown(self) -> None:
        """Stop the kernel now and kill whatever it left in the slot; idempotent."""
        kc, km, proc = self._kc, self._km, self._process()
        self._kc = self._km = self._poller = None
        if kc is not None:
            for name in ("iopub", "shell"):
                self._unwatch(name, getattr(kc, f"_{name}_channel", None))
        # the kernel first: the pid namespace's init then exits, and bwrap reaps it
        if self.slot.sandboxed:
            kill_uid(self.slot.uid)
        if kc is not None:
            try:
                kc.stop_channels()
            except Exception:  # closing sockets of a dead kernel may fail; nothing to do
                pass
        if km is not None:  # the control socket start_kernel opened (a plain zmq close)
            km._close_control_socket()
        if self._wire is not None:
            self._wire.forget(self._wire_key)
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # started in a session of its own
                except OSError:
                    proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.slot.kill_processes()

    # -- execution ------------------------------------------------------------------------
    def execute(
        self,
        code: str,
        timeout: float | None = None,
        limits: OutputLimits | None = None,
    ) -> ExecutionResult:
        """Run ``code``; on timeout interrupt; return what came out (never raises for what
        the code does or sends; raises :class:`SandboxError` if the kernel is not running).

        The call ends when the kernel's ``execute_reply`` and its ``idle`` status for this
        request have both arrived (a forged ``idle`` alone does not end it), when the
        deadline passes and the interrupt's grace is over, or when the kernel dies. The
        clock is looked at after every batch of messages, so no stream of them holds it off.
        """
        if self._kc is None:
            raise SandboxError("the kernel is not running")
        limits = limits or OutputLimits()
        timeout = timeout if timeout is not None else self.config.timeout
        self.execution_count += 1
        col = OutputCollector(limits, self.slot.images, f"out-{os.urandom(3).hex()}")
        start = time.monotonic()
        self._drain_stale()
        if self._interrupt_pending:
            self._settle(limits)
        msg_id = self._kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=True)
        run = _Run(msg_id, deadline=start + timeout)
        while not run.finished(time.monotonic()):
            self._pump(run, col, limits)
            if self._check(run, col, timeout):
                break
        res = col.result()
        if run.interrupted_at is not None and not run.dead:
            # the code may have ended before the interrupt reached it
            self._interrupt_pending = res.error is None or res.error.ename != "KeyboardInterrupt"
        res.timed_out = run.timed_out
        res.kernel_restarted = run.dead
        res.duration = time.monotonic() - start
        return res

    def _settle(self, limits: OutputLimits) -> None:
        """Give a late interrupt a short cell of its own to land in (its output is
        dropped), so the next call's code does not get a KeyboardInterrupt it never
        earned."""
        self._interrupt_pending = False
        col = OutputCollector(limits, self.slot.images, f"settle-{os.urandom(3).hex()}")
        code = "import time as _t; _t.sleep(0.05); del _t"
        msg_id = self._kc.execute(code, silent=True, store_history=False, allow_stdin=False)
        run = _Run(msg_id, deadline=time.monotonic() + self.config.interrupt_grace)
        while not run.finished(time.monotonic()) and time.monotonic() < run.deadline:
            self._pump(run, col, limits)
            if not self.is_alive():
                return

    def _pump(self, run: _Run, col: OutputCollector, limits: OutputLimits) -> None:
        """Wait up to 50 ms for messages and take a bounded batch of them."""
        import zmq

        channels = {"iopub": self._kc.iopub_channel, "shell": self._kc.shell_channel}
        if self._poller is None:  # made again after a channel is replaced
            self._poller = zmq.Poller()
            for ch in channels.values():
                self._poller.register(ch.socket, zmq.POLLIN)
            for mon in self._monitors.values():
                self._poller.register(mon, zmq.POLLIN)
        ready = dict(self._poller.poll(50))
        for name, mon in list(self._monitors.items()):
            if mon in ready and self._disconnected(name) and self.is_alive():
                col.note(
                    f"a message from the kernel over {limits.message_bytes // 2**20} MB was "
                    "too large to take and was dropped; some output may be missing"
                )
                self._reconnect(name)
                run.cut[name] = True
        stop = time.monotonic() + _BATCH_SECONDS
        for name, ch in channels.items():
            if ch.socket is None or ch.socket not in ready:
                continue
            for _ in range(_BATCH):
                msg = _recv(ch)
                if msg is None:
                    break
                if msg is _BAD:
                    col.malformed()
                else:
                    try:
                        (self._on_iopub if name == "iopub" else self._on_shell)(msg, run, col)
                    except Exception:  # a shape no check foresaw (RecursionError, ...)
                        col.malformed()
                # the clock and a close are looked at between messages, not only batches
                if self.closing or time.monotonic() > stop:
                    return

    @staticmethod
    def _on_iopub(msg: dict[str, Any], run: _Run, col: OutputCollector) -> None:
        run.iopub_at = time.monotonic()
        if _parent_id(msg) != run.msg_id:
            col.count()  # output of an earlier call, or a forgery: it still counts
            return
        if msg.get("msg_type") == "status":
            content = msg.get("content")
            col.count()
            if isinstance(content, dict) and content.get("execution_state") == "idle":
                run.idle_at = run.idle_at or time.monotonic()
            return
        col.add(msg)

    @staticmethod
    def _on_shell(msg: dict[str, Any], run: _Run, col: OutputCollector) -> None:
        col.count()
        if _parent_id(msg) == run.msg_id and msg.get("msg_type") == "execute_reply":
            run.reply_at = run.reply_at or time.monotonic()

    def _check(self, run: _Run, col: OutputCollector, timeout: float) -> bool:
        """Handle timeouts, floods and a dead kernel; True when the execution is over."""
        now = time.monotonic()
        if not self.is_alive():
            run.dead = True
            col.note(self._death_note())
            return True
        if run.interrupted_at is None and (now >= run.deadline or col.flooded):
            if col.flooded and now < run.deadline:
                col.note("the output was flooding; the execution was interrupted")
            else:
                run.timed_out = True
                col.note(f"execution timed out after {timeout:g} s and was interrupted")
            run.interrupted_at = now
            self.interrupt()
        elif run.interrupted_at is not None and now - run.interrupted_at > (
            self.config.interrupt_grace
        ):
            run.dead = True
            col.note("the kernel did not stop after the interrupt, so it was killed")
            self.kill()
            return True
        return False

    def _death_note(self) -> str:
        if self.closing:
            return "the session was closed while this code ran"
        cg = self.slot.cgroup
        code = self.exit_code()
        if cg is not None and cg.oom_kills() > self._oom_base:
            why = f"it ran out of memory (limit {self.config.memory_mb} MB)"
        else:
            why = f"exit code {code}" if code is not None else "it stopped answering"
        return f"the kernel died while running this code ({why})"

    # -- the client's sockets -------------------------------------------------------------
    def _watch(self, name: str, sock: Any) -> None:
        """Watch ``sock`` for the disconnect zmq makes when a message is over MAXMSGSIZE."""
        import zmq

        self._monitors[name] = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)

    def _disconnected(self, name: str) -> bool:
        """Read the monitor's events; True if a disconnect was among them."""
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        mon, seen = self._monitors[name], False
        for _ in range(100):
            try:
                event = recv_monitor_message(mon, flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            except Exception:  # a monitor frame we cannot read: treat it as a disconnect
                seen = True
                break
            seen = seen or event.get("event") == zmq.EVENT_DISCONNECTED
        return seen

    def _reconnect(self, name: str) -> None:
        """Replace a channel zmq disconnected (it does not reconnect after a protocol error)."""
        kc = self._kc
        self._poller = None
        attr = f"_{name}_channel"
        old = getattr(kc, attr)
        self._unwatch(name, old)
        old.close()
        setattr(kc, attr, None)
        self._watch(name, getattr(kc, f"{name}_channel").socket)

    def _unwatch(self, name: str, channel: Any) -> None:
        mon = self._monitors.pop(name, None)
        if mon is None:
            return
        try:
            if channel is not None and channel.socket is not None:
                channel.socket.disable_monitor()
        except Exception:  # the socket is already gone
            pass
        mon.close(linger=0)

    def _drain_stale(self) -> None:
        """Drop what arrived since the last call (a background thread's output, forgeries)
        unread, within a count and a time, and replace a channel that was cut meanwhile."""
        import zmq

        stop = time.monotonic() + _BATCH_SECONDS
        for name in ("iopub", "shell"):
            if name in self._monitors and self._disconnected(name) and self.is_alive():
                self._reconnect(name)
            sock = getattr(self._kc, f"{name}_channel").socket
            for _ in range(10 * _BATCH):
                try:
                    sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)  # not parsed
                except zmq.Again:
                    break
                if time.monotonic() > stop:
                    return


_BATCH = 200
#: most seconds one batch of messages may take before the clock is looked at again
_BATCH_SECONDS = 0.05
#: JSON values (containers, items, keys) a message part may hold; a part with more is
#: not parsed (a 10 MB "[[],[],...]" would be three million Python lists on the host)
_MAX_JSON_VALUES = 100_000
_BIG_PART = 65_536
_JSON_STRING = re.compile(rb'"(?>[^"\\]*)(?>\\.[^"\\]*)*"')
_BAD: Any = object()


def _json_values(part: bytes) -> int:
    """About how many JSON values ``part`` holds (its strings are not looked into)."""
    quotes = part.count(b'"') - part.count(b'\\"')
    if quotes > 2 * _MAX_JSON_VALUES:  # as many strings are as many values: no need to look
        return quotes // 2
    bare = _JSON_STRING.sub(b"", part)
    return bare.count(b",") + bare.count(b":") + bare.count(b"[") + bare.count(b"{")


def _recv(channel: Any) -> Any:
    """One message from ``channel`` without waiting: the message, None if there is none,
    or ``_BAD`` if it cannot be read (bad signature, replay, not JSON, wrong frames)."""
    import zmq

    try:
        frames = channel.socket.recv_multipart(flags=zmq.NOBLOCK)
    except zmq.Again:
        return None
    except Exception:  # the socket is gone
        return _BAD
    try:
        session = channel.session
        _idents, parts = session.feed_identities(frames)
        # parts: signature, header, parent header, metadata, content, buffers
        if any(len(p) > _BIG_PART and _json_values(p) > _MAX_JSON_VALUES for p in parts[1:5]):
            return _BAD
        return _deserialize(session, parts)
    except Exception:  # whatever the kernel sent that could not be read
        return _BAD


def _deserialize(session: Any, parts: list[bytes]) -> dict[str, Any]:
    """jupyter_client's ``Session.deserialize`` (signature, replay, JSON) without its date
    parsing and protocol adaptation, which took a third of the host's time per call."""
    if len(parts) < 5:
        raise ValueError("too few message parts")
    sig = parts[0]
    if session.auth is not None:
        if not sig or sig in session.digest_history:
            raise ValueError("an unsigned or replayed message")
        session._add_digest(sig)
        if not hmac.compare_digest(sig, session.sign(parts[1:5])):
            raise ValueError("a bad signature")
    header = session.unpack(parts[1])
    kind = header.get("msg_type") if isinstance(header, dict) else None
    return {
        "header": header,
        "msg_type": kind,
        "parent_header": session.unpack(parts[2]),
        "metadata": session.unpack(parts[3]),
        "content": session.unpack(parts[4]),
        "buffers": parts[5:],
    }


def _parent_id(msg: dict[str, Any]) -> Any:
    parent = msg.get("parent_header")
    return parent.get("msg_id") if isinstance(parent, dict) else None


class _Run:
    """The state of one execution."""

    #: seconds to wait for the idle status once the reply came (it comes right after,
    #: unless IOPub lost it), and for the reply once idle came on a cut shell channel
    GRACE = 1.0

    def __init__(self, msg_id: str, deadline: float) -> None:
        self.msg_id = msg_id
        self.deadline = deadline
        self.interrupted_at: float | None = None
        self.timed_out = False
        self.dead = False
        self.reply_at: float | None = None
        self.iopub_at = 0.0  # when the last IOPub message came
        self.idle_at: float | None = None
        self.cut = {"iopub": False, "shell": False}

    def finished(self, now: float) -> bool:
        if self.reply_at is not None and self.idle_at is not None:
            return True
        if self.reply_at is not None:  # the idle status may be lost (a cut, a full queue):
            # done once IOPub has been quiet for a while (output still coming, such as a
            # background thread's, may have this call's result and idle behind it)
            return now - max(self.reply_at, self.iopub_at) > self.GRACE
        if self.idle_at is not None:  # the reply may have been lost with a cut
            return self.cut["shell"] and now - self.idle_at > self.GRACE
        return False


def _write_private(path: str, text: str, owner: int) -> None:
    """Write ``path`` without following a symlink planted there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode())
        if owner >= 0:
            os.fchown(fd, owner, owner)
    finally:
        os.close(fd)
