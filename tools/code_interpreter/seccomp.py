"""A seccomp filter for the kernel: a deny list of system calls sandboxed code never needs.

It blocks what would widen the host kernel's attack surface or reach outside the sandbox:
new user namespaces (``clone``/``unshare`` with ``CLONE_NEWUSER``, ``setns``), keyrings,
``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring``, ``ptrace``, mount and module
calls, handle-based opens, and every system call of another ABI (i386, x32). ``clone3``
answers ENOSYS, so the C library falls back to ``clone``, whose flags can be checked.
``socket`` and ``socketpair`` are allowed for AF_UNIX, AF_INET and AF_INET6 only: the
network namespace does not isolate AF_VSOCK (its port space is the host's), and the
other families (packet, alg, ...) are attack surface with no use there: EPERM (AF_NETLINK
gets EOPNOTSUPP, see ``_AF_NETLINK``).

:func:`filter_program` returns the classic-BPF program as bytes; the launcher inside the
sandbox installs it with ``prctl(PR_SET_SECCOMP)`` after setting ``no_new_privs``.
"""

from __future__ import annotations

import platform
import struct

__all__ = ["filter_program", "DENIED", "SOCKET_FAMILIES"]

_ARCH = {  # machine -> (AUDIT_ARCH_*, syscall numbers by name)
    "x86_64": (0xC000003E, {
        "unshare": 272, "clone": 56, "clone3": 435, "setns": 308, "keyctl": 250,
        "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "ptrace": 101, "mount": 165, "umount2": 166, "pivot_root": 155,
        "chroot": 161, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167,
        "swapoff": 168, "acct": 163, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "process_vm_readv": 310, "process_vm_writev": 311, "syslog": 103,
        "pidfd_getfd": 438, "lookup_dcookie": 212, "uselib": 134, "quotactl": 179,
        "fanotify_init": 300, "socket": 41, "socketpair": 53,
    }),
    "aarch64": (0xC00000B7, {
        "unshare": 97, "clone": 220, "clone3": 435, "setns": 268, "keyctl": 219,
        "add_key": 217, "request_key": 218, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "ptrace": 117, "mount": 40, "umount2": 39, "pivot_root": 41,
        "chroot": 51, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "reboot": 142, "swapon": 224,
        "swapoff": 225, "acct": 89, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "process_vm_readv": 270, "process_vm_writev": 271, "syslog": 116,
        "pidfd_getfd": 438, "lookup_dcookie": 18, "quotactl": 60, "fanotify_init": 262,
        "socket": 198, "socketpair": 199,
    }),
}  # fmt: skip

_CHECKED = {"clone", "unshare", "clone3", "socket", "socketpair"}
#: denied outright (EPERM); clone and unshare only with CLONE_NEWUSER; clone3 gets ENOSYS;
#: socket and socketpair only for the families in SOCKET_FAMILIES
DENIED = tuple(sorted(set(_ARCH["x86_64"][1]) - _CHECKED))  # type: ignore[arg-type]
#: socket families code in the empty network namespace may open: AF_UNIX, AF_INET, AF_INET6
#: (which reach nothing there). Every other one (AF_VSOCK, whose port space is the host's
#: and not isolated by the namespace; AF_PACKET, AF_NETLINK, AF_ALG, ...) gets EPERM.
SOCKET_FAMILIES = (1, 2, 10)
# AF_NETLINK is refused too, but with EOPNOTSUPP: libzmq (ipykernel binds a tcp pipe on
# 127.0.0.1) lists interfaces with getifaddrs, which opens a netlink socket, and aborts the
# kernel on EPERM, while it reads EOPNOTSUPP as "no interface list" and goes on
_AF_NETLINK, _EOPNOTSUPP = 16, 95

_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
_EPERM, _ENOSYS = 1, 38
_CLONE_NEWUSER = 0x10000000
_X32_BIT = 0x40000000


def filter_program(machine: str | None = None) -> bytes | None:
    """The BPF program for ``machine`` (default: this one), or None if it is not known."""
    arch = _ARCH.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, nr = arch
    code: list[tuple[int, object, object, int]] = []  # (op, jt label, jf label, k)

    def op(o: int, k: int, jt: object = 0, jf: object = 0) -> None:
        code.append((o, jt, jf, k))

    op(_LD_ABS, 4)  # seccomp_data.arch
    op(_JEQ, audit_arch, 0, "deny")
    op(_LD_ABS, 0)  # seccomp_data.nr
    if audit_arch == 0xC000003E:
        op(_JGE, _X32_BIT, "deny", 0)
    for name in DENIED:
        if name in nr:
            op(_JEQ, nr[name], "deny", 0)
    op(_JEQ, nr["clone3"], "enosys", 0)
    op(_JEQ, nr["clone"], "flags", 0)
    op(_JEQ, nr["unshare"], "flags", 0)
    op(_JEQ, nr["socket"], "family", 0)
    op(_JEQ, nr["socketpair"], "family", 0)
    op(_RET, _ALLOW)
    labels = {"flags": len(code)}
    op(_LD_ABS, 16)  # low 32 bits of args[0] (little-endian)
    op(_JSET, _CLONE_NEWUSER, "deny", 0)
    op(_RET, _ALLOW)
    labels["family"] = len(code)
    op(_LD_ABS, 16)  # the family: an int, so the kernel reads only these 32 bits too
    for family in SOCKET_FAMILIES:
        op(_JEQ, family, "allow", 0)
    op(_JEQ, _AF_NETLINK, "eopnotsupp", 0)
    op(_RET, _ERRNO | _EPERM)
    labels["eopnotsupp"] = len(code)
    op(_RET, _ERRNO | _EOPNOTSUPP)
    labels["allow"] = len(code)
    op(_RET, _ALLOW)
    labels["deny"] = len(code)
    op(_RET, _ERRNO | _EPERM)
    labels["enosys"] = len(code)
    op(_RET, _ERRNO | _ENOSYS)

    out = bytearray()
    for i, (o, jt, jf, k) in enumerate(code):
        jt_off = labels[jt] - i - 1 if isinstance(jt, str) else int(jt)  # type: ignore[call-overload]
        jf_off = labels[jf] - i - 1 if isinstance(jf, str) else int(jf)  # type: ignore[call-overload]
        out += struct.pack("=HBBI", o, jt_off, jf_off, k)
    return bytes(out)
