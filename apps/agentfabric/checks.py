"""Checks on what AgentFabric's store is given from outside: owner and session keys,
uploaded file names and contents, and imported configs (which may only use this app's
registered tools, start no MCP servers, name no model server and no host paths).

The errors raised are :mod:`agentfabric.store`'s; as that module imports this one, each
function imports them where it raises them.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from typing import Any

from pydantic import ValidationError

from qwen_agent.config import AgentConfig, tool_name

__all__ = [
    "APP_OPTIONS",
    "PATH_OPTIONS",
    "SETTABLE",
    "settable_problem",
    "check_key",
    "check_owner",
    "file_ext",
    "image_ext",
    "parse_import",
    "problems",
    "sanitize_filename",
    "untrusted_config",
]

#: tool options whose values are places on the host (files, folders, model directories)
PATH_OPTIONS = frozenset({"files", "root", "index_dir", "output_dir", "model", "input_dirs"})
#: tool options only the app sets: a config's ``session_id`` would join another
#: conversation's kernel; ``pool``/``quota``/``progress`` are the operator's objects and limits
APP_OPTIONS = frozenset({"session_id", "pool", "quota", "progress"})


def check_owner(owner: Any) -> None:
    """StoreError unless ``owner`` is a usable owner key."""
    check_key(owner, "owner")


def check_key(value: Any, what: str) -> None:
    """StoreError unless ``value`` is a usable ``owner`` or ``session`` key."""
    from .store import StoreError  # store imports this module

    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= (255 if what == "owner" else 200)
        or any(unicodedata.category(ch) == "Cc" for ch in value)
    ):
        limit = 255 if what == "owner" else 200
        raise StoreError(
            f"{what} must be a non-empty string of at most {limit} characters without "
            f"control characters, not {value!r:.40}"
        )


def sanitize_filename(name: str) -> str:
    """A display name from an uploaded file's name: no folders (``/`` or ``\\``), no
    control or format characters, no leading dots, at most 200 characters (the extension
    kept); ``"file"`` when nothing is left."""
    name = unicodedata.normalize("NFC", str(name))
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = name.strip().lstrip(".").strip()
    if len(name) > 200:
        stem, ext = os.path.splitext(name)
        name = stem[: 200 - len(ext)] + ext if len(ext) <= 16 else name[:200]
    return name or "file"


def file_ext(name: str) -> str:
    """The lower-case extension of ``name`` (``".md"``), or ``""`` when it has no plain one."""
    ext = os.path.splitext(name)[1].lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,10}", ext) else ""


def image_ext(head: bytes) -> str | None:
    """The extension of the image whose first bytes are ``head`` (PNG, JPEG, GIF or WebP);
    None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ".gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    return None


def parse_import(data: bytes, max_bytes: int) -> dict[str, Any]:
    """The top level of an import file (an exported agent's JSON), checked: at most
    ``max_bytes``, a JSON object of AgentFabric's export format and version with a
    ``config`` object and no unknown keys; ImportRefused otherwise."""
    from .store import EXPORT_FORMAT, EXPORT_VERSION, ImportRefused, MiB  # store imports us

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImportRefused("an import is the bytes of an exported .json file")
    if len(data) > max_bytes:
        raise ImportRefused(
            f"the import file is {len(data) / MiB:.1f} MiB; at most "
            f"{max_bytes // MiB} MiB can be imported"
        )
    try:
        document = json.loads(bytes(data))
    except (ValueError, RecursionError) as exc:
        raise ImportRefused(f"the import file is not JSON: {str(exc):.200}") from None
    if not isinstance(document, dict):
        raise ImportRefused("the import file must hold a JSON object at the top")
    if document.get("format") != EXPORT_FORMAT:
        raise ImportRefused(
            f"the import file is not an AgentFabric export (its 'format' is "
            f"{document.get('format')!r:.60}, not {EXPORT_FORMAT!r})"
        )
    version = document.get("version")
    if type(version) is not int or version != EXPORT_VERSION:
        raise ImportRefused(
            f"the import file's version is {document.get('version')!r:.60}; this "
            f"AgentFabric reads version {EXPORT_VERSION}"
        )
    if not isinstance(document.get("config"), dict):
        raise ImportRefused("the import file's 'config' must be an object")
    unknown = sorted(set(document) - {"format", "version", "config", "files"})
    if unknown:
        raise ImportRefused(f"the import file has unknown keys {unknown[:5]}")
    return document


def problems(exc: ValidationError, n: int = 5) -> str:
    """The first ``n`` of a validation error's problems, on one line."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()[:n]
    )


def untrusted_config(raw: dict[str, Any]) -> AgentConfig:
    """An imported config, checked: registered tools only, no MCP servers, no model server,
    no host paths in tool options; ``llm``, ``knowledge``, ``avatar`` and ``version`` are
    dropped (the app picks the model; files come from the import's ``files``)."""
    from qwen_agent.formats import FORMATS
    from qwen_agent.tool import TOOLS

    from .store import ImportRefused  # store imports this module

    raw = dict(raw)
    llm = raw.pop("llm", None)
    if isinstance(llm, dict) and (llm.get("base_url") or llm.get("api_key")):
        raise ImportRefused(
            "the import's config names a model server (llm.base_url / llm.api_key); an "
            "imported agent uses the model this app runs: remove 'llm' from the file"
        )
    if raw.get("mcp_servers") or raw.get("mcpServers"):
        raise ImportRefused(
            "the import's config has mcp_servers, which start programs on this machine; "
            "an import cannot carry them: remove them, import, and add servers you trust"
        )
    for key in ("knowledge", "avatar", "version", "mcp_servers", "mcpServers"):
        raw.pop(key, None)
    try:
        config = AgentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ImportRefused(f"the import's config is not valid: {problems(exc)}") from None
    known = TOOLS.names()
    for spec in config.tools:
        name = tool_name(spec)
        if not isinstance(name, str) or name not in TOOLS or ":" in name:
            raise ImportRefused(
                f"the import's config uses tool {name!r:.80}; an import may only use this "
                f"app's registered tools ({', '.join(known)}), never code by module or file"
            )
        if isinstance(spec, dict):
            _check_options(name, {k: v for k, v in spec.items() if k != "name"})
    for name, options in config.tool_options.items():
        _check_options(name, options)
    if config.format not in FORMATS:
        raise ImportRefused(
            f"the import's config asks for tool format {config.format!r:.40}; known: "
            f"{', '.join(FORMATS.names())}"
        )
    return config


#: the options a person (the form, an import) may give the built-in tools, with their
#: kind and bounds: an allow-list, so nothing can hold a shared kernel for hours or load
#: another copy of a model (``timeout``, ``device``, ``dtype`` elsewhere are the operator's)
SETTABLE: dict[str, dict[str, tuple[type, float, float]]] = {
    "code_interpreter": {"timeout": (float, 1, 300)},
    "image_gen": {"timeout": (float, 1, 600)},
    "retrieval": {
        "top_k": (int, 1, 20),
        "chunk_chars": (int, 200, 5000),
        "chunk_overlap": (int, 0, 1000),
        "max_file_mb": (float, 0.1, 20),
        "stem": (bool, 0, 1),
        "timeout": (float, 1, 300),
    },
}


def settable_problem(tool: str, key: str, value: Any) -> str | None:
    """Why ``tool``'s option ``key`` may not be ``value`` here (None: it may)."""
    allowed = SETTABLE.get(tool, {})
    if key not in allowed:
        names = ", ".join(allowed) or "none"
        return f"{tool} has no option {key!r:.40} you can set here; its options: {names}"
    kind, low, high = allowed[key]
    if kind is bool:
        return None if isinstance(value, bool) else f"{tool}.{key} is true or false"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{tool}.{key} is a number"
    if kind is int and not float(value).is_integer():
        return f"{tool}.{key} is a whole number"
    if not low <= value <= high:
        return f"{tool}.{key} must be between {low:g} and {high:g}, got {value!r:.20}"
    return None


def _check_options(tool: str, options: dict[str, Any]) -> None:
    """ImportRefused if an imported tool's ``options`` name a host path or set what only
    the app sets."""
    from .store import ImportRefused  # store imports this module

    for key, value in options.items():
        if key in PATH_OPTIONS and value not in (None, "", []):
            raise ImportRefused(
                f"the import's config gives tool {tool!r:.60} the option {key!r} = "
                f"{value!r:.80}, a place on the exporting host; an import cannot name host "
                "paths: upload knowledge files instead"
            )
        if key in APP_OPTIONS:
            raise ImportRefused(
                f"the import's config sets tool {tool!r:.60}'s option {key!r}, which only "
                "this app sets (per conversation or by its operator): remove it"
            )
        empty = key in PATH_OPTIONS and value in (None, "", [])  # names no place: harmless
        problem = None if empty else settable_problem(tool, key, value)
        if problem is not None:
            raise ImportRefused(f"the import's config: {problem}")
