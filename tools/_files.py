"""Where built-in tools keep their output files, and how they write them (atomically)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["data_dir", "save_atomic"]


def data_dir() -> Path:
    """Where tools keep files: ``$QWEN_AGENT_DATA_DIR``, else ``$XDG_DATA_HOME/qwen-agent``,
    else ``~/.local/share/qwen-agent``."""
    if os.environ.get("QWEN_AGENT_DATA_DIR"):
        return Path(os.environ["QWEN_AGENT_DATA_DIR"])
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "qwen-agent"


def save_atomic(final: Path, data: Any) -> Path:
    """Write ``data`` (bytes, or an image with ``.save(file, format="PNG")``) to ``final``
    through a hidden temporary file in the same folder, so no reader sees half a file.
    OSError on failure, with the temporary file removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                data.save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return final
