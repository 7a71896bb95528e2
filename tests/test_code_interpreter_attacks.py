"""The attack suite: hostile code in a real sandboxed kernel is contained and reported, and
the host and other sessions are untouched. No test sends traffic off this machine."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from qwen_agent.errors import SandboxError
from tests.sandbox_helpers import (
    SECRET_ENV,
    SECRET_VALUE,
    assert_nothing_left,
    host_ip,
    host_listener,
    requires_sandbox,
    small_config,
)

pytestmark = [requires_sandbox, pytest.mark.timeout(120)]
REPO = str(Path(__file__).resolve().parent.parent)


@pytest.fixture(scope="module")
def pool():
    from qwen_agent.tools.code_interpreter import KernelPool

    old = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = SECRET_VALUE  # in the host's environment while kernels start
    p = KernelPool(small_config(), size=2, max_sessions=12)
    try:
        yield p
    finally:
        p.shutdown()
        if old is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = old
    assert_nothing_left(p)


@pytest.fixture
def sid(pool):
    session_id = f"atk-{uuid.uuid4().hex[:8]}"
    yield session_id
    pool.close_session(session_id)


def run_json(pool, sid, code):
    res = pool.execute(sid, code + "\nimport json as _j\nprint(_j.dumps(R))")
    assert res.ok, res.text
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- network ------------------------------------------------------------------------------


def test_network_egress_is_blocked(pool, sid):
    abstract = socket.socket(socket.AF_UNIX)
    name = f"qwen-ci-test-{uuid.uuid4().hex[:8]}"
    abstract.bind("\0" + name)
    abstract.listen(1)
    ip = host_ip()
    with host_listener() as listener:
        code = f"""
import socket
R = {{}}
R["ifaces"] = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
R["routes"] = open("/proc/net/route").read().strip().splitlines()[1:]
R["routes6"] = [l.split()[-1] for l in open("/proc/net/ipv6_route").read().splitlines()]
def attempt(family, addr):
    s = socket.socket(family)
    s.settimeout(3)
    try:
        s.connect(addr)
        return "connected"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
R["loopback"] = attempt(socket.AF_INET, ("127.0.0.1", {listener.port}))
R["host_ip"] = attempt(socket.AF_INET, ({ip!r}, {listener.port})) if {ip!r} else "none"
R["abstract"] = attempt(socket.AF_UNIX, "\\0{name}")
"""
        r = run_json(pool, sid, code)
        time.sleep(0.3)
        accepted = listener.accepted
    abstract.close()
    assert r["ifaces"] == ["lo"]
    assert r["routes"] == []
    assert set(r["routes6"]) <= {"lo"}
    assert r["loopback"] == "ConnectionRefusedError"  # the sandbox's own, empty loopback
    assert r["host_ip"] in ("OSError", "none")  # ENETUNREACH: no route at all
    assert r["abstract"] == "ConnectionRefusedError"
    assert accepted == 0


# -- reading the host ---------------------------------------------------------------------


def test_cannot_read_shadow_home_project_or_pool_files(pool, sid):
    code = f"""
import os
R = {{}}
for p in ["/etc/shadow", "/etc/gshadow", "/root/.bashrc", "/root/.ssh/id_rsa", "/etc/hostname",
          {REPO!r} + "/pyproject.toml", {pool.root!r}]:
    try:
        with open(p, "rb") as f:
            R[p] = "READ " + f.read(40).decode(errors="replace")
    except OSError as e:
        R[p] = type(e).__name__
R["uid"] = os.getuid()
R["root_ls"] = sorted(os.listdir("/"))
R["home_ls"] = sorted(os.listdir("/home"))
R["root_home_ls"] = sorted(os.listdir("/root")) if os.path.isdir("/root") else []
R["repo_visible"] = os.path.exists({REPO!r})
"""
    r = run_json(pool, sid, code)
    for key, value in r.items():
        if key.startswith("/"):
            assert not str(value).startswith("READ"), (key, value)
    assert r["uid"] >= pool.config.uid_base
    assert r["home_ls"] == ["user"]
    assert set(r["root_home_ls"]) <= {".pyenv"}  # only the Python install, when it lives there
    assert r["repo_visible"] is False
    assert "shadow" not in json.dumps(r["root_ls"])
    top = "/" + REPO.strip("/").split("/")[0] + "/"
    python_there = (sys.prefix + "/").startswith(top) or (sys.base_prefix + "/").startswith(top)
    # a checkout under /tmp or /home: the sandbox has its own dir of that name
    if not python_there and top not in ("/tmp/", "/home/"):
        assert top.strip("/") not in r["root_ls"]  # shown only when the Python install is there


def test_host_environment_does_not_reach_the_kernel(pool, sid):
    assert os.environ[SECRET_ENV] == SECRET_VALUE
    code = """
import os
R = {"env": sorted(os.environ), "procs": {}}
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            R["procs"][pid] = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        except OSError as e:
            R["procs"][pid] = type(e).__name__
"""
    r = run_json(pool, sid, code)
    assert SECRET_ENV not in r["env"]
    assert SECRET_VALUE not in json.dumps(r)
    assert len(r["procs"]) <= 4  # only the sandbox's own processes are visible


def test_other_sessions_are_invisible_and_unreachable(pool, sid):
    other = sid + "-victim"
    marker = "victim-secret-" + uuid.uuid4().hex
    try:
        pool.execute(other, f"open('secret.txt', 'w').write({marker!r}); alive = 'yes'")
        victim_work = pool.working_dir(other)
        code = f"""
import os
R = {{"found": [], "open": None}}
for top in ["/home", "/tmp", "/run", "/dev/shm"]:
    for root, dirs, files in os.walk(top):
        for f in files:
            try:
                if {marker!r} in open(os.path.join(root, f), errors="ignore").read(200):
                    R["found"].append(os.path.join(root, f))
            except OSError:
                pass
try:
    R["open"] = open({victim_work!r} + "/secret.txt").read()
except OSError as e:
    R["open"] = type(e).__name__
R["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
"""
        r = run_json(pool, sid, code)
        assert r["found"] == [] and r["open"] == "FileNotFoundError"
        # kill(-1) signals every process it may, but itself: in its sandbox there are none
        res = pool.execute(sid, "import os, signal; os.kill(-1, signal.SIGKILL)")
        assert res.error is not None and res.error.ename == "ProcessLookupError", res.text
        assert len(r["pids"]) <= 3  # bwrap's init and the kernel (and a helper at most)
        assert pool.execute(other, "alive").result == "'yes'"
        assert pool.read_file(other, "secret.txt").decode() == marker
    finally:
        pool.close_session(other)


def test_cannot_write_outside_the_working_directory(pool, sid):
    tag = uuid.uuid4().hex[:8]
    targets = ["/", "/usr/lib", "/etc", "/root", sys.prefix, "/home", "/dev", "/proc",
               "/run", "/usr/local/bin"]  # fmt: skip
    code = f"""
import os
R = {{}}
for d in {targets!r}:
    p = os.path.join(d, "pwned-{tag}")
    try:
        open(p, "w").write("x")
        R[p] = "WROTE"
    except OSError as e:
        R[p] = type(e).__name__
for p in ["/proc/sys/kernel/hostname", "/proc/sysrq-trigger", "/etc/passwd"]:
    try:
        open(p, "w").write("x")
        R[p] = "WROTE"
    except OSError as e:
        R[p] = type(e).__name__
open("/tmp/pwned-{tag}", "w").write("private tmp")
open("/home/user/ok-{tag}", "w").write("fine")
R["ok"] = True
"""
    r = run_json(pool, sid, code)
    assert r.pop("ok") is True
    assert all(v != "WROTE" for v in r.values()), r
    for d in [*targets, "/tmp", tempfile_dir()]:
        assert not os.path.exists(os.path.join(d, f"pwned-{tag}")), d
    assert pool.read_file(sid, f"ok-{tag}") == b"fine"


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()


# -- resource exhaustion ------------------------------------------------------------------


def test_fork_bomb_is_contained(pool, sid):
    from qwen_agent.tools.code_interpreter.uids import uid_processes

    code = """
import os, time
n, err = 0, None
try:
    while n < 5000:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError as e:
    err = e.errno
print("forked", n, "errno", err)
"""
    res = pool.execute(sid, code)
    assert "errno 11" in res.stdout, res.text  # EAGAIN: the process limit
    forked = int(res.stdout.split()[1])
    assert 10 < forked < pool.config.max_processes
    uid = os.stat(pool.working_dir(sid)).st_uid
    assert len(uid_processes(uid)) <= pool.config.max_processes
    other = sid + "-b"
    try:
        assert pool.execute(other, "1 + 1").result == "2"  # other sessions still work
    finally:
        pool.close_session(other)
    pool.close_session(sid)
    assert uid_processes(uid) == []


def test_classic_fork_bomb_is_contained(pool, sid):
    res = pool.execute(sid, "import os\nwhile True:\n    os.fork()", timeout=4)
    assert res.error is not None or res.timed_out or res.kernel_restarted, res.text
    assert pool.execute(sid, "2 + 2").result == "4"


def test_memory_bomb_is_contained(pool, sid):
    res = pool.execute(sid, "x = bytearray(2**40)")
    assert res.error is not None and res.error.ename == "MemoryError"
    res = pool.execute(sid, "a = []\nwhile len(a) < 400:\n    a.append(b'x' * 10**7)")
    contained = (res.error is not None and res.error.ename == "MemoryError") or (
        res.kernel_restarted and "out of memory" in res.text
    )
    assert contained, res.text
    assert pool.execute(sid, "1 + 1").result == "2"
    cg = f"/sys/fs/cgroup/memory/qwen-agent/u{os.stat(pool.working_dir(sid)).st_uid}"
    if os.path.isdir(cg):  # cgroup v1 here: the limit is set and was never exceeded
        limit = int(Path(cg, "memory.limit_in_bytes").read_text())
        assert limit == pool.config.memory_mb * 2**20
        assert int(Path(cg, "memory.max_usage_in_bytes").read_text()) <= limit


def test_infinite_loop_is_interrupted_and_state_kept(pool, sid):
    pool.execute(sid, "kept = 41")
    t0 = time.monotonic()
    res = pool.execute(sid, "while True:\n    pass", timeout=2)
    assert time.monotonic() - t0 < 6
    assert res.timed_out and not res.kernel_restarted
    assert res.error is not None and res.error.ename == "KeyboardInterrupt"
    assert "timed out after 2 s and was interrupted" in res.text
    assert pool.execute(sid, "kept + 1").result == "42"


def test_uninterruptible_loop_is_killed_and_restarted(pool, sid):
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    res = pool.execute(sid, code, timeout=2)
    assert res.timed_out and res.kernel_restarted
    assert "did not stop after the interrupt" in res.text and "variables" in res.text
    assert pool.execute(sid, "1 + 1").result == "2"


def test_cpu_time_limit_kills_a_busy_kernel():
    from qwen_agent.tools.code_interpreter import KernelPool

    with KernelPool(small_config(cpu_seconds=4), size=0) as p:
        res = p.execute("cpu", "while True:\n    pass", timeout=30)
        assert res.kernel_restarted and "kernel died" in res.text, res.text
        assert p.execute("cpu", "1 + 1").result == "2"
    assert_nothing_left(p)


@pytest.mark.parametrize("width", [100, 100_000])
def test_output_flood_is_cut_and_reported(pool, sid, width):
    res = pool.execute(sid, f"while True:\n    print('x' * {width})", timeout=8)
    assert len(res.text) < 40_000
    if res.kernel_restarted:  # a flood can exhaust the kernel's own buffers first
        assert "out of memory" in res.text or "kernel died" in res.text, res.text
    else:
        assert not res.timed_out and res.truncated
        assert "output was flooding" in res.text and "output truncated" in res.text
    assert pool.execute(sid, "1 + 1").result == "2"


@pytest.mark.parametrize(
    "code",
    [
        "import os; os._exit(3)",
        "import ctypes; ctypes.string_at(0)",
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    ],
    ids=["os_exit", "segfault", "sigkill"],
)
def test_kernel_crash_is_reported_and_next_call_works(pool, sid, code):
    pool.execute(sid, "open('kept.txt', 'w').write('k')")
    res = pool.execute(sid, code)
    assert res.kernel_restarted and "the kernel died" in res.text, res.text
    assert "new kernel was started" in res.text
    assert pool.execute(sid, "open('kept.txt').read()").result == "'k'"


def test_disk_fill_is_capped(pool, sid):
    before = os.statvfs("/")
    code = """
import errno
R = {}
try:
    with open("big.bin", "wb") as f:
        for _ in range(100):
            f.write(b"x" * 2**20)
except OSError as e:
    R["big"] = e.errno
n = 0
try:
    for i in range(200):
        with open(f"fill{i}.bin", "wb") as f:
            for _ in range(8):
                f.write(b"x" * 2**20)
        n += 8
except OSError as e:
    R["fill"] = e.errno
R["mb"] = n
"""
    r = run_json(pool, sid, code)
    assert r["big"] == 27  # EFBIG: larger than max_file_mb
    assert r["fill"] == 28  # ENOSPC: the session's tmpfs is full
    assert r["mb"] <= pool.config.disk_mb
    after = os.statvfs("/")
    lost = (before.f_bavail - after.f_bavail) * after.f_frsize
    assert lost < 48 * 2**20  # the host's disk did not take the writes
    with pytest.raises(SandboxError, match="upload"):
        pool.upload(sid, "more.bin", b"y" * 2**20)
    res = pool.execute(sid, "import glob, os\nfor p in glob.glob('*.bin'): os.remove(p)")
    assert res.ok
    pool.upload(sid, "more.bin", b"y" * 2**20)


def test_inode_exhaustion_is_capped(pool, sid):
    code = "n = 0\ntry:\n    for n in range(100000):\n        open(f'e{n}', 'w').close()\n"
    code += "except OSError as e:\n    print('stopped', n, e.errno)"
    res = pool.execute(sid, code)
    words = res.stdout.split()
    assert words[0] == "stopped" and words[2] == "28", res.text  # ENOSPC: out of inodes
    assert int(words[1]) <= pool.config.max_inodes


# -- the host reading what the code planted ------------------------------------------------


def test_planted_symlinks_do_not_escape_on_download_or_upload(pool, sid, tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("host only")
    code = f"""
import os
os.symlink({str(canary)!r}, "leak.txt")
os.symlink("/etc", "etc")
os.symlink({str(tmp_path)!r}, "hostdir")
os.mkfifo("fifo")
R = {{}}
try:
    os.link("/etc/passwd", "hard")
    R["hard"] = "linked"
except OSError as e:
    R["hard"] = type(e).__name__
for p in ["/run/jupyter/k-1", "/run/jupyter/kernel.json"]:
    try:
        os.unlink(p)
        R[p] = "removed"
    except OSError as e:
        R[p] = type(e).__name__
"""
    r = run_json(pool, sid, code)
    assert r["hard"] != "linked"
    assert r["/run/jupyter/k-1"] == "PermissionError"  # the host's sockets stay its own
    for bad in ("leak.txt", "etc/shadow", "etc/passwd", "hostdir/canary.txt", "fifo", "hard"):
        t0 = time.monotonic()
        with pytest.raises(SandboxError):
            pool.read_file(sid, bad)
        assert time.monotonic() - t0 < 2  # a FIFO does not block the host
    assert [f.path for f in pool.list_files(sid)] == []
    pool.upload(sid, "leak.txt", b"replaced")
    assert canary.read_text() == "host only"
    assert pool.read_file(sid, "leak.txt") == b"replaced"
    assert pool.execute(sid, "1 + 1").result == "2"  # the kernel's sockets still work


def test_path_traversal_in_uploaded_names(pool, sid):
    names = ["../../escape.txt", "/etc/cron.d/evil", "..", "a/../../b.txt",
             "..\\..\\win.txt", ".bashrc", "x\x00y.txt", "sub/dir/", "ok name.csv"]  # fmt: skip
    slot_dir = os.path.dirname(pool.working_dir(sid))
    before = sorted(os.listdir(slot_dir))
    inside = [pool.upload(sid, n, n.encode("utf-8", "replace")) for n in names]
    for p in inside:
        rest = p.removeprefix("/home/user/")
        assert p.startswith("/home/user/") and "/" not in rest and rest not in ("", ".", "..")
    assert sorted(os.listdir(slot_dir)) == before
    listed = pool.execute(sid, "import os; sorted(os.listdir('.'))").result
    for p in inside:
        assert repr(p.removeprefix("/home/user/")) in listed
    assert not os.path.exists("/etc/cron.d/evil")


# -- the kernel's attack surface -----------------------------------------------------------

SYSCALLS = r"""
import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
X86 = platform.machine() == "x86_64"
NR = {"unshare": 272 if X86 else 97, "ptrace": 101 if X86 else 117, "bpf": 321 if X86 else 280,
      "io_uring_setup": 425, "keyctl": 250 if X86 else 219, "clone3": 435}
def call(nr, *args):
    r = libc.syscall(nr, *args)
    return "ok" if r >= 0 else os.strerror(ctypes.get_errno())
R = {}
r, w = os.pipe()
if os.fork() == 0:  # single-threaded, as creating a user namespace requires
    os.write(w, call(NR["unshare"], 0x10000000).encode())
    os._exit(0)
os.wait()
R["userns"] = os.read(r, 100).decode()
"""
OTHERS = r"""
R["ptrace"] = call(NR["ptrace"], 0, 0, 0, 0)
R["bpf"] = call(NR["bpf"], 0, 0, 0)
R["io_uring"] = call(NR["io_uring_setup"], 1, 0)
R["keyctl"] = call(NR["keyctl"], 0, 0)
R["clone3"] = call(NR["clone3"], 0, 0)
if X86:
    R["x32"] = call(0x40000000 | 39)
import subprocess, threading
t = threading.Thread(target=lambda: None)
t.start()
t.join()
R["subprocess"] = subprocess.run(["true"]).returncode
"""


def test_seccomp_blocks_user_namespaces_and_risky_syscalls(pool, sid):
    r = run_json(pool, sid, SYSCALLS + OTHERS)
    assert r["userns"] == "Operation not permitted"
    for name in ("ptrace", "bpf", "io_uring", "keyctl", "x32"):
        assert r.get(name, "Operation not permitted") == "Operation not permitted", (name, r)
    assert r["clone3"] == "Function not implemented"  # the C library falls back to clone
    assert r["subprocess"] == 0  # threads, fork and subprocesses still work


def test_without_seccomp_the_same_probe_creates_a_user_namespace():
    """The control: the probe above does detect a missing filter (where the host allows
    unprivileged user namespaces at all)."""
    from qwen_agent.tools.code_interpreter import KernelPool

    with KernelPool(small_config(seccomp=False), size=0) as p:
        r = run_json(p, "ctl", SYSCALLS)
    assert_nothing_left(p)
    if r["userns"] != "ok":
        pytest.skip(f"this host forbids unprivileged user namespaces anyway: {r['userns']}")


# -- limits the code fights from inside (issue 11) -----------------------------------------
# Each test below failed on the code before the fix named in its docstring.

_SLOW_STREAMS = {
    # a message every few ms: never a pause long enough for the old loop to look at the clock
    "clear_output": "from IPython.display import clear_output\nimport time\nwhile True:\n"
    "    clear_output()\n    time.sleep(0.004)",
    "bad_images": "from IPython.display import display\nimport time\nwhile True:\n"
    "    display({'image/png': 'bm90IGEgcG5n'}, raw=True)\n    time.sleep(0.004)",
    "uninterruptible": "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "from IPython.display import clear_output\nwhile True:\n    clear_output()\n"
    "    time.sleep(0.004)",
}


@pytest.mark.parametrize("kind", sorted(_SLOW_STREAMS))
def test_a_stream_of_messages_cannot_switch_the_timeout_off(pool, sid, kind):
    """Class 1: the deadline is checked on every message, not only when none arrives."""
    t0 = time.monotonic()
    res = pool.execute(sid, _SLOW_STREAMS[kind], timeout=3)
    took = time.monotonic() - t0
    assert took < 3 + pool.config.interrupt_grace + 6, (took, res.text)
    assert res.timed_out, res.text
    assert res.kernel_restarted == (kind == "uninterruptible"), res.text
    assert pool.execute(sid, "1 + 1").result == "2"


def test_a_flood_of_tiny_messages_counts_against_the_flood_limit(pool, sid):
    """Class 1: every message counts, also those that show nothing (clear_output)."""
    code = "from IPython.display import clear_output\nwhile True:\n    clear_output()"
    t0 = time.monotonic()
    res = pool.execute(sid, code, timeout=60)
    assert time.monotonic() - t0 < 30, res.text
    assert "output was flooding" in res.text and not res.timed_out, res.text
    assert pool.execute(sid, "1 + 1").result == "2"


def test_close_session_kills_a_busy_kernel_instead_of_waiting(pool):
    """Class 1: a close kills the kernel first; it does not queue behind the running call."""
    sid = f"atk-close-{uuid.uuid4().hex[:8]}"
    out: dict = {}

    def run():
        try:
            out["res"] = pool.execute(sid, _SLOW_STREAMS["uninterruptible"], timeout=60)
        except SandboxError as exc:
            out["err"] = exc

    pool.open_session(sid)
    t = threading.Thread(target=run)
    t.start()
    time.sleep(2)
    t0 = time.monotonic()
    pool.close_session(sid)
    took = time.monotonic() - t0
    t.join(20)
    assert not t.is_alive()
    assert took < 10, took
    assert not pool.has_session(sid)
    if "res" in out:
        assert "closed" in out["res"].text, out["res"].text


def test_socket_families_beyond_unix_and_ip_are_refused(pool, sid):
    """Class 2: seccomp allows AF_UNIX, AF_INET and AF_INET6 only (vsock is not namespaced)."""
    code = r"""
import ctypes, errno, platform, socket
R = {}
def attempt(fam, typ):
    try:
        socket.socket(fam, typ).close()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
for name, fam, typ in [("vsock", 40, 1), ("vsock_dgram", 40, 2), ("packet", 17, 3),
                       ("netlink", 16, 3), ("alg", 38, 5), ("bluetooth", 31, 1),
                       ("key", 15, 3), ("rds", 21, 5), ("tipc", 30, 4), ("can", 29, 3),
                       ("xdp", 44, 3), ("qipcrtr", 42, 2), ("unix", 1, 1), ("unix_dgram", 1, 2),
                       ("inet", 2, 1), ("inet_udp", 2, 2), ("inet6", 10, 1)]:
    R[name] = attempt(fam, typ)
for name, fam in [("pair_vsock", 40), ("pair_unix", 1)]:
    try:
        a, b = socket.socketpair(fam, socket.SOCK_STREAM)
        a.close(); b.close()
        R[name] = "ok"
    except OSError as e:
        R[name] = errno.errorcode.get(e.errno, str(e.errno))
libc = ctypes.CDLL(None, use_errno=True)
nr = 41 if platform.machine() == "x86_64" else 198
fd = libc.syscall(nr, ctypes.c_long((1 << 32) | 40), 1, 0)  # the family's high bits set
R["high_bits"] = "ok" if fd >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
"""
    r = run_json(pool, sid, code)
    for name in ("unix", "unix_dgram", "inet", "inet_udp", "inet6", "pair_unix"):
        assert r[name] == "ok", (name, r)
    # netlink: refused with EOPNOTSUPP, which libzmq (in the kernel itself) survives
    assert r.pop("netlink") in ("EOPNOTSUPP", "ENOTSUP"), r  # the same number on Linux
    for name, value in r.items():
        if name not in ("unix", "unix_dgram", "inet", "inet_udp", "inet6", "pair_unix"):
            assert value == "EPERM", (name, r)


@pytest.mark.parametrize(
    "code",
    [
        "from IPython.display import display\nfor _ in range(15000):\n"
        "    display({'image/png': 'bm90IGEgcG5n'}, raw=True)",
        "raise ValueError('v' * 3_000_000)",
        "raise type('E' * 1_000_000, (Exception,), {})('boom')",
        "class E(Exception):\n    def __str__(self):\n"
        "        return 'line\\n' * 500_000\nraise E()",
        "def f(n):\n    return f(n + 1)\nf(0)",
        "import warnings\nfor i in range(3000):\n    warnings.warn('w' * 2000 + str(i))",
    ],
    ids=["bad_images", "huge_message", "huge_name", "many_lines", "recursion", "warnings"],
)
def test_the_output_cap_holds_for_notes_and_errors(pool, sid, code):
    """Class 3: the final text is capped, repeated notes are collapsed, tracebacks capped."""
    res = pool.execute(sid, code)
    assert len(res.text) <= 2 * pool.limits.max_chars + 200, len(res.text)
    assert len(res.to_content()[0].text) == len(res.text)
    assert res.text.count("not a PNG") <= 1, res.text[-2000:]
    if res.error is not None:
        assert len(res.error.ename) <= 200 and len(res.error.evalue) <= pool.limits.max_chars
    assert pool.execute(sid, "1 + 1").result == "2"


def _rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> float:
    """Reset this process's peak RSS (VmHWM) to its current RSS; return that RSS. A peak
    reached while the GIL is held (a big json.loads) is seen, unlike by sampling."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _rss_mb()


_HUGE = {
    # one 120 MB part: zmq's MAXMSGSIZE refuses it
    "one_part": "import sys\nsys.stdout.write(s)\nsys.stdout.flush()\n",
    # 60 parts of 8 MB, all views of one buffer (8 MB of the kernel's memory, 480 MB on the
    # wire): each part passes MAXMSGSIZE; the wire guard counts the whole message
    "many_parts": "k = get_ipython().kernel\nb = b'x' * 8_000_000\n"
    "k.session.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': 'hi'}, "
    "parent=k.get_parent('shell'), buffers=[b] * 60)",
    # the same on the shell channel, as if it were a reply
    "many_parts_shell": "k = get_ipython().kernel\nb = b'x' * 8_000_000\n"
    "k.session.send(k.shell_stream, 'execute_reply', {'status': 'ok'}, "
    "parent=k.get_parent('shell'), ident=k._parent_ident['shell'], buffers=[b] * 60)",
}


_BOMB = (
    "k = get_ipython().kernel\ns = k.session\np = k.get_parent('shell')\n"
    "c = b'[' + b'[],' * 3_300_000 + b'[]]'\n"
    "parts = [s.pack(s.msg_header('stream')), s.pack(p['header']), b'{}', c]\n"
)
_CUT = ("one_part", "many_parts", "many_parts_shell")
# a signed 10 MB content of empty lists: three million Python lists if it were parsed
_HUGE["json_bomb"] = _BOMB + "k.iopub_socket.send_multipart([b'<IDS|MSG>', s.sign(parts)] + parts)"
_HUGE["json_bomb_shell"] = _BOMB + (
    "k.shell_stream.socket.send_multipart(k._parent_ident['shell'] + "
    "[b'<IDS|MSG>', s.sign(parts)] + parts)"
)


@pytest.mark.parametrize("kind", sorted(_HUGE))
def test_one_huge_message_does_not_grow_the_host(kind):
    """Class 4: a message is bounded, each part (zmq MAXMSGSIZE) and all its parts together
    (the wire guard), before the host reads it; the cut is reported, the session goes on."""
    from qwen_agent.tools.code_interpreter import KernelPool

    with KernelPool(small_config(memory_mb=1024), size=0) as p:
        p.execute("big", "s = 'x' * 120_000_000" if kind == "one_part" else "s = 1")
        base = _reset_peak()
        res = p.execute("big", _HUGE[kind], timeout=20)
        peak = [_rss_mb("VmHWM")]
        assert peak[0] - base < 60, (base, peak[0])
        assert ("too large" if kind in _CUT else "malformed") in res.text, res.text[:2000]
        after = p.execute("big", "del s\nprint('still here')")
        assert after.stdout == "still here\n", after.text
        assert p.execute("big", "print('x' * 1000)").stdout == "x" * 1000 + "\n"
    assert_nothing_left(p)


_FORGE = r"""
import json as _json, time as _time
k = get_ipython().kernel
s, parent = k.session, k.get_parent("shell")
def forge(kind, content):
    s.send(k.iopub_socket, kind, content, parent=parent)
def raw(header, parent_header, content, sign=True):
    parts = [s.pack(header) if not isinstance(header, bytes) else header,
             s.pack(parent_header) if not isinstance(parent_header, bytes) else parent_header,
             b"{}", content if isinstance(content, bytes) else s.pack(content)]
    sig = s.sign(parts) if sign else b"bad"
    k.iopub_socket.send_multipart([b"<IDS|MSG>", sig] + parts)
hdr = s.msg_header("stream")
"""
_FORGERIES = {
    "spoofed_idle": 'forge("status", {"execution_state": "idle"})',
    "stream_shapes": 'forge("stream", {"name": 5, "text": ["a"]})\n'
    'forge("stream", {"name": "stdout", "text": {"x": 1}})',
    "display_shapes": 'forge("display_data", {"data": [1]})\n'
    'forge("execute_result", {"data": {"text/plain": {"x": 1}, "image/png": 7}})',
    "error_shapes": 'forge("error", {"traceback": 7, "ename": None, "evalue": [1]})',
    "bad_signature": 'raw(hdr, parent["header"], {"name": "stdout", "text": "x"}, sign=False)',
    "garbage_frames": 'k.iopub_socket.send_multipart([b"garbage", b"<IDS|MSG>", b"x"])',
    "content_list": 'raw(hdr, parent["header"], b"[1, 2]")',
    "parent_list": 'raw(hdr, b"[]", {"name": "stdout", "text": "x"})',
    "header_list": 'raw(b"[]", parent["header"], {"name": "stdout", "text": "x"})',
    "deep_json": 'raw(hdr, parent["header"], b"[" * 200000)',
    "not_json": 'raw(hdr, parent["header"], b"\\xff\\xfe{")',
    # nesting that a JSON parser takes and str() does not (RecursionError)
    "nested_error": 'deep = b"[" * 1000 + b"]" * 1000\n'
    'raw(s.msg_header("error"), parent["header"], '
    'b\'{"traceback": [\' + deep + b\'], "ename": \' + deep + b\', "evalue": "x"}\')',
    "replayed": 'm = [s.pack(hdr), s.pack(parent["header"]), b"{}", s.pack({"name": "stdout", '
    '"text": "r"})]\nsig = s.sign(m)\nfor _ in range(3):\n'
    '    k.iopub_socket.send_multipart([b"<IDS|MSG>", sig] + m)',
}


@pytest.mark.parametrize("forgery", sorted(_FORGERIES))
def test_forged_kernel_messages_become_observations(pool, sid, forgery):
    """Class 5: messages are validated, a spoofed idle does not end the call (the matching
    execute_reply is awaited), and nothing odd raises out of execute."""
    code = _FORGE + _FORGERIES[forgery] + "\n_time.sleep(1.5)\nprint('done for real')"
    res = pool.execute(sid, code)
    assert "done for real" in res.stdout, res.text
    assert not res.kernel_restarted, res.text
    assert pool.execute(sid, "1 + 1").result == "2"


def test_shutdown_during_a_stuck_close_leaves_nothing():
    """Class 6: a session being closed is disposed by shutdown too; nothing is left."""
    from qwen_agent.tools.code_interpreter import KernelPool

    p = KernelPool(small_config(timeout=60), size=0)
    p.open_session("stuck")
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    runner = threading.Thread(target=lambda: _quiet(p.execute, "stuck", code, timeout=60))
    runner.start()
    time.sleep(1.5)
    closer = threading.Thread(target=lambda: _quiet(p.close_session, "stuck"))
    closer.start()
    time.sleep(0.3)
    p.shutdown()
    assert_nothing_left(p)
    runner.join(20)
    closer.join(20)
    assert not runner.is_alive() and not closer.is_alive()


def _quiet(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except SandboxError:
        pass


@pytest.mark.parametrize("owner", ["none", "this_process"])
def test_a_left_root_with_mounts_is_swept(owner):
    """Class 6: a root a pool could not remove (a mount in it, its owner file gone, or its
    owner this live process but no live pool) is unmounted and removed by the next pool."""
    import tempfile

    from qwen_agent.tools.code_interpreter import KernelPool
    from qwen_agent.tools.code_interpreter.sandbox import _libc
    from qwen_agent.tools.code_interpreter.stale import PREFIX, forget_root, write_owner

    cfg = small_config()
    root = tempfile.mkdtemp(prefix=PREFIX)
    slot = os.path.join(root, f"s{cfg.uid_base + cfg.uid_count - 1}")
    os.mkdir(slot)
    assert _libc.mount(b"tmpfs", slot.encode(), b"tmpfs", 0, b"size=1m") == 0
    open(os.path.join(slot, "left.txt"), "w").write("x")
    if owner == "this_process":
        write_owner(root)
        forget_root(root)  # as a pool's shutdown does before its removal failed
    with KernelPool(cfg, size=0) as p:
        assert p.root != root
        assert not os.path.exists(root), os.listdir(root)
    from tests.sandbox_helpers import mounts_under

    assert mounts_under(root) == []


def test_terminal_control_sequences_do_not_reach_the_text(pool, sid):
    """Class 7: escape sequences and control characters are removed from what is shown."""
    code = r"""
import sys
print("\x1b[2J\x1b[H\x1b]52;c;cHduZWQ=\x07\x1b]0;pwned-title\x07visible\x07\x08\x9b2J "
      "\x1bPdcs-payload\x1b\\ \u202egnp.exe tab\tok \u200bzw\u200e\u2028\ufeff\U000e0041")
print("progress 10%\rprogress 99%")
sys.stderr.write("\x1b[31merr\x1b[0m\r\n")
from IPython.display import display
display({"text/plain": "\x1b]52;c;cHduZWQ=\x07shown"}, raw=True)
"\x1b]0;result-title\x07result"
"""
    res = pool.execute(sid, code)
    for bad in ("\x1b", "\x07", "\x08", "\x9b", "\u202e", "\r", "cHduZWQ=", "pwned-title",
                "dcs-payload", "\u200b", "\u200e", "\u2028", "\ufeff", "\U000e0041"):  # fmt: skip
        assert bad not in res.text, (bad, res.text)
    assert "visible" in res.stdout and "shown" in res.stdout and "err" in res.stderr
    assert "progress 99%" in res.stdout and "result" in res.result  # (a repr: escapes as text)
    err = pool.execute(sid, 'raise ValueError("\\x1b]0;t\\x07bad\\x1b[2J\\x07")')
    assert err.error is not None and "\x1b" not in err.text and "\x07" not in err.text
    assert "bad" in err.error.evalue


def test_host_paths_do_not_show_in_the_sandbox(pool, sid):
    """Class 8: bwrap's arguments (pool directory, binds) come through --args, not argv."""
    code = """
import os
R = {}
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for f in ("cmdline", "environ", "mountinfo"):
            try:
                R[pid + "/" + f] = open(f"/proc/{pid}/{f}", "rb").read().decode(errors="replace")
            except OSError as e:
                R[pid + "/" + f] = type(e).__name__
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            fds = []
        for fd in fds:  # e.g. the kernel's stderr, which ipykernel keeps a copy of
            try:
                R[pid + "/fd/" + fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError as e:
                R[pid + "/fd/" + fd] = type(e).__name__
"""
    r = run_json(pool, sid, code)
    assert "1/cmdline" in r and "bwrap" in r["1/cmdline"]
    assert any(k.endswith("/fd/2") for k in r), sorted(r)[:20]
    dump = json.dumps(r)
    slot = os.path.dirname(pool.working_dir(sid))
    assert pool.root not in dump and slot not in dump
    if not (sys.prefix + "/").startswith(REPO + "/"):
        assert REPO not in dump


def test_images_have_their_own_quota_and_leave_the_disk_to_the_code(pool, sid):
    """Class 9: saved images live outside the session's tmpfs, within image_store_mb."""
    code = r"""
import base64, os
from IPython.display import display
for _ in range(8):
    raw = b"\x89PNG\r\n\x1a\n" + os.urandom(2**20)
    display({"image/png": base64.b64encode(raw).decode()}, raw=True)
"""
    shown = []
    for _ in range(12):  # 96 MB of images for a 64 MB session disk
        res = pool.execute(sid, code)
        assert len(res.images) == 8, res.text
        shown.append(res.images)
    assert all(os.path.exists(p) for p in shown[-1])
    kept = [p for images in shown for p in images if os.path.exists(p)]
    assert sum(os.path.getsize(p) for p in kept) <= pool.limits.image_store_mb * 2**20
    assert not any(os.path.exists(p) for p in shown[0])  # the oldest went first
    fill = "for i in range(3):\n    with open(f'fill{i}.bin', 'wb') as f:\n"
    fill += "        for _ in range(15):\n            f.write(b'x' * 2**20)"  # 45 MB
    res = pool.execute(sid, fill)
    assert res.ok, res.text


def test_upload_refuses_a_str_and_takes_bytes_or_a_path(pool, sid, tmp_path):
    """Class 10: a str is not taken for a host path (a caller may mean the text)."""
    from qwen_agent.tools.code_interpreter import CodeInterpreter

    with pytest.raises(SandboxError, match="bytes"):
        pool.upload(sid, "hostname.txt", "/etc/hostname")
    tool = CodeInterpreter(session_id=sid, pool=pool)
    with pytest.raises(SandboxError, match="bytes"):
        tool.upload("passwd.txt", "/etc/passwd")
    assert pool.list_files(sid) == []
    src = tmp_path / "a.txt"
    src.write_text("from a path")
    assert pool.upload(sid, "a.txt", src) == "/home/user/a.txt"
    assert tool.upload("b.txt", b"text as bytes") == "/home/user/b.txt"
    res = pool.execute(sid, "open('a.txt').read() + '|' + open('b.txt').read()")
    assert res.result == "'from a path|text as bytes'"


def test_a_python_in_a_venv_under_tmp_starts_kernels():
    """Class 11: the interpreter's prefix is bound after the private /tmp, not under it."""
    import shutil
    import subprocess
    import tempfile

    base = tempfile.mkdtemp(prefix="qwen-venv-test-", dir="/tmp")
    os.chmod(base, 0o755)  # as `python -m venv /tmp/venv` makes it (mkdtemp's is 0700)
    try:
        made = subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", base],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        # this test's own site-packages, .pth files included (an editable install made in
        # another venv is found through one), as --system-site-packages would give them
        # when the tests run on the system Python
        import site

        sites = [*site.getsitepackages(), site.getusersitepackages()]
        script = (
            f"import site\nfor p in {sites!r}: site.addsitedir(p)\n"
            "from tests.sandbox_helpers import small_config\n"
            "from qwen_agent.tools.code_interpreter import KernelPool\n"
            "with KernelPool(small_config(), size=0) as p:\n"
            "    r = p.execute('v', 'import sys, os; print(sys.prefix, os.listdir(\"/tmp\"))')\n"
            "    print('RESULT', r.ok, r.text)\n"
        )
        out = subprocess.run(
            [os.path.join(base, "bin", "python"), "-c", script],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert f"RESULT True {base} " in out.stdout, out.stdout + out.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_wire_relay_outlives_the_thread_that_made_the_pool_and_restarts_if_killed():
    """Class 4: the relay process is tied to the pool, not to a thread; if it dies anyway,
    the next call starts a new one and the session's kernel is reached again."""
    import signal

    from qwen_agent.tools.code_interpreter import KernelPool

    made: dict = {}
    maker = threading.Thread(target=lambda: made.update(p=KernelPool(small_config(), size=0)))
    maker.start()
    maker.join()
    p = made["p"]
    try:
        time.sleep(0.5)
        assert p._wire.alive()  # the thread that started it is gone, the relay is not
        assert p.execute("w", "x = 5; x").result == "5"
        os.kill(p._wire._proc.pid, signal.SIGKILL)
        p._wire._proc.wait(5)
        res = p.execute("w", "x + 1", timeout=10)
        assert res.result == "6", res.text  # the same kernel: its variables are there
    finally:
        p.shutdown()
    assert_nothing_left(p)


_BACKGROUND = r"""
import threading, time
k = get_ipython().kernel
s = k.session
def flood():
    b = b"y" * 11_000_000
    end = time.monotonic() + 20
    for _ in range(120):
        if time.monotonic() > end:
            break
        try:
            s.send(k.iopub_socket, "stream", {"name": "stdout", "text": "z"},
                   parent=k.get_parent("shell"), buffers=[b])
            s.send(k.shell_stream, "x", {}, parent=k.get_parent("shell"),
                   ident=k._parent_ident["shell"], buffers=[b])
        except Exception:
            break
threading.Thread(target=flood, daemon=True).start()
"""


def test_a_flood_between_calls_is_not_parked_in_the_host():
    """Class 4: what a background thread sends while no call runs is not queued in the host
    beyond a message or so per socket (zmq RCVHWM 1, stdin and control not connected), and
    the next call is not held up by it."""
    from qwen_agent.tools.code_interpreter import KernelPool

    with KernelPool(small_config(memory_mb=512), size=0) as p:
        p.execute("bg", "1")
        base = _reset_peak()
        assert p.execute("bg", _BACKGROUND).ok
        time.sleep(4)  # the flood runs while nothing reads
        t0 = time.monotonic()
        res = p.execute("bg", "print('next')", timeout=3)
        took = time.monotonic() - t0
        assert took < 3 + p.config.interrupt_grace + 1, (took, res.text)
        assert _rss_mb("VmHWM") - base < 60, (base, _rss_mb("VmHWM"))
    assert_nothing_left(p)


def test_messages_that_are_slow_to_read_do_not_stretch_the_timeout(pool, sid):
    """Class 1: a message costs the host little however it is made (escape bytes are
    cleaned only in what is kept), and the clock is looked at between messages."""
    code = (
        "import threading\nk = get_ipython().kernel\np = k.get_parent('shell')\n"
        "def go():\n    for _ in range(20):\n"
        "        k.session.send(k.iopub_socket, 'stream', "
        "{'name': 'stdout', 'text': '\\x9b' * 5_000_000}, parent=p)\n"
        "threading.Thread(target=go).start()\nimport time\ntime.sleep(30)"
    )
    t0 = time.monotonic()
    res = pool.execute(sid, code, timeout=3)
    took = time.monotonic() - t0
    assert took < 3 + pool.config.interrupt_grace + 3, (took, res.text[-500:])
    assert "\x9b" not in res.text
    assert pool.execute(sid, "1 + 1").result == "2"


@pytest.mark.parametrize("attempt", range(5))
def test_an_interrupt_that_comes_after_the_code_ended_does_not_hit_the_next_call(
    pool, sid, attempt
):
    """A flood that ends at once: the host's interrupt reaches a kernel that is already
    done (seen once in CI: the next call got the KeyboardInterrupt). The next call runs."""
    flood = pool.limits.flood_chars
    res = pool.execute(sid, f"import sys; sys.stdout.write('x' * {flood + 1000})")
    assert "flooding" in res.text
    for _ in range(3):
        assert pool.execute(sid, "1 + 1").result == "2"
