"""The supervisor of one MCP stdio server, run as a script (never imported by the package):

    python -I -S supervisor.py PARENT_PID GRACE COMMAND [ARG ...]

It is the server's direct child on POSIX and the leader of the server's process group (the
MCP SDK starts it in a session of its own). It forks the server, tells its pid and its own
(the group's) on stderr, and stays to stop the whole group (SIGTERM, GRACE seconds,
SIGKILL) when the server exits, when it is sent SIGTERM, or when the agent process dies.

- Linux's PR_SET_PDEATHSIG only reaches a direct child, so it is set here, with a signal
  that can be handled (SIGTERM), and leads to the same stop.
- On Linux it is a child subreaper (PR_SET_CHILD_SUBREAPER): the workers the server leaves
  behind become its children, and it kills (by /proc's list of its group) and reaps them all
  before it exits, leaving no zombies.

It uses the standard library only and nothing of qwen_agent, so it starts fast (``-S``) and
isolated (``-I``). The first line it writes to stderr is read by ``process.StderrTail``;
after that its stdin, stdout and stderr are /dev/null (the server keeps the real ones).
"""

import os
import signal
import sys
import time

#: the line that tells the host the server's pid and the group's; process.PID_MARK reads it
PID_MARK = b"\0qwen-agent-mcp-pid "
# prctl(2) options
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def become_guardian() -> bool:
    """Ask for SIGTERM when the parent dies, and to adopt orphaned descendants; whether
    this process is now a child subreaper (Linux only; False elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1) == 0
    except Exception:
        return False


def group_members() -> list[int]:
    """The live processes of this process's group (zombies and the supervisor left out),
    from /proc."""
    me, out = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # after the command's ")": state, ppid, pgrp, ...
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == me and fields[0] not in "ZX":
                    out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def reap() -> None:
    """Collect every child that has exited, without waiting."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


class Supervisor:
    def __init__(self, grace: float, reaper: bool) -> None:
        self.grace = grace
        self.reaper = reaper
        #: the exit code to leave with: the server's (128 + signal when a signal ended it)
        self.code = 0

    def stop(self, *_: object) -> None:
        """Stop the whole group and exit; the SIGTERM handler too, so it never returns."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's SIGTERM reaches us too
        try:
            os.killpg(0, signal.SIGTERM)
        except OSError:
            pass
        end = time.monotonic() + self.grace
        if self.reaper:
            # the group's members are ours to reap: wait for them to go, up to grace
            while time.monotonic() < end:
                reap()
                if not group_members():
                    os._exit(self.code)
                time.sleep(0.02)
            # then SIGKILL what is left, about a second of rounds (forks may race us)
            for _ in range(100):
                for pid in group_members():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.01)
                reap()
                if not group_members():
                    os._exit(self.code)
        else:
            # no /proc view of the group's orphans: wait (up to grace) for our children only
            while time.monotonic() < end:
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        time.sleep(0.02)
                except ChildProcessError:
                    break
        os.killpg(0, signal.SIGKILL)  # whatever is left, this process included

    def start_server(self, cmd: list[str]) -> int:
        """Fork the server; it runs ``cmd`` once the pid line is written (so the host reads
        that line before anything the server writes). Returns its pid."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the server: default signals back, wait for the go, become cmd
            try:
                for sig in (signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
                    signal.signal(sig, signal.SIG_DFL)
                os.close(w)
                os.read(r, 1)
                os.close(r)
                os.execvp(cmd[0], cmd)
            except BaseException as exc:
                os.write(2, f"cannot run {cmd[0]}: {exc}\n".encode())
            os._exit(127)
        os.close(r)
        os.write(2, PID_MARK + b"%d %d\n" % (pid, os.getpid()))
        os.close(w)  # the go: the server's read returns
        return pid

    def wait_for(self, server: int) -> None:
        """Reap children until the server exits; keep its exit code."""
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == server:
                code = os.waitstatus_to_exitcode(status)
                self.code = code if code >= 0 else 128 - code
                break


def detach_stdio() -> None:
    """Point stdin, stdout and stderr at /dev/null: the host's pipes are the server's."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)


def main(argv: list[str]) -> None:
    parent, grace, cmd = int(argv[0]), float(argv[1]), argv[2:]
    sup = Supervisor(grace, reaper=become_guardian())
    signal.signal(signal.SIGTERM, sup.stop)
    if os.getppid() != parent:  # the parent died before PR_SET_PDEATHSIG was set
        sup.stop()
    server = sup.start_server(cmd)
    detach_stdio()
    sup.wait_for(server)
    sup.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
