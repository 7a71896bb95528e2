"""Configuration of the code interpreter: sandbox limits, output limits, a remote gateway."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SandboxConfig", "OutputLimits", "GatewayConfig"]


class SandboxConfig(BaseModel):
    """How a session's kernel is isolated and limited.

    ``mode="bwrap"`` (the default) runs each kernel in bubblewrap, without network, as a uid
    of its own, on a read-only view of the system, with a size-capped private working
    directory. It needs ``bwrap`` and root. ``mode="unsandboxed"`` runs the kernel as the
    host user with no isolation at all: only for trusted code, and only when asked for.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["bwrap", "unsandboxed"] = "bwrap"
    #: wall-clock seconds one execution may take before the kernel is interrupted
    timeout: float = Field(60.0, gt=0)
    #: seconds to wait after an interrupt before the kernel is killed and restarted
    interrupt_grace: float = Field(3.0, gt=0)
    #: memory of the whole sandbox (cgroup); the kernel's address space gets ``address_space_mb``
    memory_mb: int = Field(1024, ge=64)
    #: RLIMIT_AS of each process; None: ``memory_mb`` + 1024 (Python maps more than it uses)
    address_space_mb: int | None = Field(None, ge=64)
    #: CPU seconds a kernel process may use over its life (RLIMIT_CPU)
    cpu_seconds: int = Field(3600, ge=1)
    #: CPU cores the sandbox may use (cgroup quota); None: no quota
    cpus: float | None = Field(1.0, gt=0)
    #: processes and threads of a session (RLIMIT_NPROC of its uid, cgroup pids.max)
    max_processes: int = Field(128, ge=16)
    #: largest file the code may write (RLIMIT_FSIZE)
    max_file_mb: int = Field(256, ge=1)
    #: open files of each process (RLIMIT_NOFILE)
    max_open_files: int = Field(1024, ge=64)
    #: size of the session's tmpfs: working directory, /tmp and saved images together (it
    #: is memory: with cgroups, what the code writes there also counts against memory_mb)
    disk_mb: int = Field(512, ge=8)
    #: most files and directories in the session's tmpfs
    max_inodes: int = Field(20_000, ge=100)
    #: seconds to wait for a new kernel to answer
    startup_timeout: float = Field(30.0, gt=0)
    #: first uid (and gid) given to sessions, and how many may be used
    uid_base: int = Field(1_200_000_000, ge=10_000, lt=2**31 - 2**20)
    uid_count: int = Field(65_536, ge=1, le=2**20)
    #: where session directories are made; None: a new private directory under the temp dir
    root_dir: str | None = None
    #: use cgroups (v1 or v2) for memory, pids and CPU when they are writable
    cgroups: bool = True
    #: install the seccomp deny list (no user namespaces, bpf, io_uring, ptrace, ...)
    seccomp: bool = True
    #: extra read-only paths to show inside the sandbox, e.g. a data set directory
    extra_ro_paths: tuple[str, ...] = ()
    #: extra environment variables for the kernel (the host's environment never goes in)
    env: dict[str, str] = Field(default_factory=dict)
    #: code run once in every new kernel before it is handed out, e.g. "import numpy"
    warmup_code: str = ""

    @property
    def address_space_bytes(self) -> int:
        mb = self.address_space_mb if self.address_space_mb is not None else self.memory_mb + 1024
        return mb * 2**20


class OutputLimits(BaseModel):
    """How much of an execution's output is shown to the model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: characters of text shown (head and tail kept, the middle cut with a note)
    max_chars: int = Field(20_000, ge=200)
    #: characters received after which a flooding execution is interrupted
    flood_chars: int = Field(5_000_000, ge=1_000)
    #: messages received (of any kind, shown or not) after which it is interrupted
    flood_messages: int = Field(20_000, ge=100)
    #: images kept per execution
    max_images: int = Field(8, ge=0)
    #: size of one image in bytes
    max_image_bytes: int = Field(8 * 2**20, ge=1024)
    #: lines of a traceback shown (the last ones)
    max_traceback_lines: int = Field(40, ge=1)
    #: disk space of a session's saved images (outside its sandbox); the oldest images of
    #: earlier executions are deleted to make room
    image_store_mb: int = Field(64, ge=1)
    #: largest message (each part) taken from a kernel; a larger one is dropped, with a
    #: note, before it is read into memory. None: room for one image of max_image_bytes
    max_message_bytes: int | None = Field(None, ge=65_536)

    @property
    def message_bytes(self) -> int:
        if self.max_message_bytes is not None:
            return self.max_message_bytes
        return self.max_image_bytes * 4 // 3 + 2**20


class GatewayConfig(BaseModel):
    """A remote Jupyter Kernel Gateway or Enterprise Gateway that runs the kernels.

    The gateway is then responsible for isolation; the tool only talks to it over HTTP and
    WebSocket. ``url`` is e.g. ``http://127.0.0.1:8888``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    kernel_name: str = "python3"
    #: sent as ``Authorization: token <auth_token>``
    auth_token: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    request_timeout: float = Field(30.0, gt=0)
    #: wall-clock seconds one execution may take before it is interrupted
    timeout: float = Field(60.0, gt=0)
    interrupt_grace: float = Field(3.0, gt=0)
    #: environment for new kernels (``KERNEL_``-prefixed names reach Enterprise Gateway)
    env: dict[str, str] = Field(default_factory=dict)
    validate_cert: bool = True
