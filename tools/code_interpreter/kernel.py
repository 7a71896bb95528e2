"""One Jupyter kernel in a sandbox :class:`~.sandbox.Slot`, driven through jupyter_client.

:meth:`SandboxedKernel.execute` runs code with a wall-clock limit: past it the kernel is
interrupted (by message: bwrap does not forward signals), and if it does not stop within
the grace period, or dies (``os._exit``, a segfault, the OOM killer), it is killed and a
fresh kernel started in the same slot. What happened is written in the result's notes.
"""

from __future__ import annotations

import json
import os
import queue
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

__all__ = ["SandboxedKernel"]

_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC


def _manager_class() -> type:
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpec

    class _SandboxKernelManager(KernelManager):  # type: ignore[misc]
        """Starts the kernel with the slot's command, interrupts it by message."""

        qa_slot: Slot | None = None

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

    def __init__(self, slot: Slot, config: SandboxConfig, context: Any = None) -> None:
        self.slot = slot
        self.config = config
        self._context = context
        self._km: Any = None
        self._kc: Any = None
        self.execution_count = 0
        self._oom_base = 0

    @property
    def log_path(self) -> str:
        """The kernel's own stderr (startup errors), on the host only."""
        return os.path.join(self.slot.path, "kernel.log")

    def log_tail(self, n: int = 1500) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - n))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the kernel and wait until it answers (``config.startup_timeout``)."""
        slot = self.slot
        self._prepare_run_dir()
        self._oom_base = slot.cgroup.oom_kills() if slot.cgroup is not None else 0
        kw: dict[str, Any] = dict(
            transport="ipc",
            ip=os.path.join(slot.run_dir, "k"),
            connection_file=os.path.join(slot.path, "kernel-host.json"),
        )
        if self._context is not None:
            kw["context"] = self._context
        km = _km_class()(**kw)
        km.qa_slot = slot
        self._km = km
        try:
            log = os.open(self.log_path, _LOG_FLAGS, 0o600)  # host-only, on the capped tmpfs
            try:
                km.start_kernel(
                    # bwrap gets a bare environment and sets the kernel's with --setenv
                    env=slot.environment() if not slot.sandboxed else {"PATH": "/usr/bin:/bin"},
                    cwd=slot.work,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            finally:
                os.close(log)
            kc = km.client()
            kc.start_channels(hb=False)
            self._kc = kc
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
        """Ask the kernel to interrupt itself (an ``interrupt_request`` on control)."""
        kc = self._kc
        if kc is not None and self.is_alive():
            kc.control_channel.send(kc.session.msg("interrupt_request", content={}))

    def shutdown(self) -> None:
        """Stop the kernel now and kill whatever it left in the slot; idempotent."""
        kc, km, proc = self._kc, self._km, self._process()
        self._kc = self._km = None
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
        the code does; raises :class:`SandboxError` if the kernel is not running)."""
        if self._kc is None:
            raise SandboxError("the kernel is not running")
        limits = limits or OutputLimits()
        timeout = timeout if timeout is not None else self.config.timeout
        self.execution_count += 1
        col = OutputCollector(limits, self.slot.outputs, f"out-{os.urandom(3).hex()}")
        start = time.monotonic()
        kc = self._kc
        msg_id = kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=True)
        state = _Run(deadline=start + timeout)
        while True:
            try:
                msg = kc.iopub_channel.get_msg(timeout=0.1)
            except queue.Empty:
                msg = None
            if msg is not None and msg.get("parent_header", {}).get("msg_id") == msg_id:
                if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                    break
                col.add(msg)
                if not col.flooded or state.interrupted_at:
                    continue
            if self._check(state, col, timeout):
                break
        res = col.result()
        res.timed_out = state.timed_out
        res.kernel_restarted = state.dead
        res.duration = time.monotonic() - start
        if not state.dead:
            self._take_reply(msg_id)
        return res

    def _check(self, state: _Run, col: OutputCollector, timeout: float) -> bool:
        """Handle timeouts, floods and a dead kernel; True when the execution is over."""
        now = time.monotonic()
        if not self.is_alive():
            state.dead = True
            col.note(self._death_note())
            return True
        if state.interrupted_at is None and (now >= state.deadline or col.flooded):
            if col.flooded:
                col.note("the output was flooding; the execution was interrupted")
            else:
                state.timed_out = True
                col.note(f"execution timed out after {timeout:g} s and was interrupted")
            state.interrupted_at = now
            self.interrupt()
        elif state.interrupted_at is not None and now - state.interrupted_at > (
            self.config.interrupt_grace
        ):
            state.dead = True
            col.note("the kernel did not stop after the interrupt, so it was killed")
            return True
        return False

    def _death_note(self) -> str:
        cg = self.slot.cgroup
        code = self.exit_code()
        if cg is not None and cg.oom_kills() > self._oom_base:
            why = f"it ran out of memory (limit {self.config.memory_mb} MB)"
        else:
            why = f"exit code {code}" if code is not None else "it stopped answering"
        return f"the kernel died while running this code ({why})"

    def _take_reply(self, msg_id: str) -> None:
        for _ in range(100):
            try:
                reply = self._kc.shell_channel.get_msg(timeout=0.5)
            except queue.Empty:
                return
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return


class _Run:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.interrupted_at: float | None = None
        self.timed_out = False
        self.dead = False


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
