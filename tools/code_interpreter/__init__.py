"""The ``code_interpreter`` tool: model-written Python in sandboxed Jupyter kernels.

``CodeInterpreter(session_id=...)`` is the tool (one kernel per conversation);
``KernelPool`` runs bubblewrap-sandboxed kernels for many sessions; ``GatewayPool`` uses a
remote Jupyter Kernel / Enterprise Gateway instead. jupyter_client is imported only when a
kernel is started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "CodeInterpreter",
    "KernelPool",
    "GatewayPool",
    "SandboxConfig",
    "OutputLimits",
    "GatewayConfig",
    "ExecutionResult",
    "FileInfo",
    "sandbox_unavailable_reason",
    "default_pool",
]

_WHERE = {
    "CodeInterpreter": "tool",
    "default_pool": "tool",
    "KernelPool": "pool",
    "GatewayPool": "gateway",
    "SandboxConfig": "config",
    "OutputLimits": "config",
    "GatewayConfig": "config",
    "ExecutionResult": "outputs",
    "FileInfo": "files",
    "sandbox_unavailable_reason": "sandbox",
}

if TYPE_CHECKING:
    from .config import GatewayConfig, OutputLimits, SandboxConfig
    from .files import FileInfo
    from .gateway import GatewayPool
    from .outputs import ExecutionResult
    from .pool import KernelPool
    from .sandbox import sandbox_unavailable_reason
    from .tool import CodeInterpreter, default_pool


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
