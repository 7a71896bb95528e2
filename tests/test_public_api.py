"""The public API is what ``qwen_agent.__all__`` exports; importing it stays light and fast."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import qwen_agent

REPO_ROOT = Path(__file__).resolve().parent.parent

EXPECTED_ALL = [
    "Agent",
    "AgentConfig",
    "BackendConnectionError",
    "BackendError",
    "BackendResponseError",
    "CallParseError",
    "ChatModel",
    "ChatResult",
    "ConfigError",
    "ContextWindowError",
    "Delta",
    "Event",
    "FileItem",
    "FinalEvent",
    "GenerationConfig",
    "HistoryTrimmed",
    "ImageItem",
    "LLMConfig",
    "Message",
    "ModelRequest",
    "ParsedOutput",
    "QwenAgentError",
    "ReasoningDelta",
    "RegistryError",
    "SandboxError",
    "TextDelta",
    "TextItem",
    "Tool",
    "ToolCall",
    "ToolCallError",
    "ToolCallEvent",
    "ToolDefinitionError",
    "ToolError",
    "ToolFormat",
    "ToolResult",
    "ToolResultEvent",
    "ToolSpec",
    "Toolset",
    "Usage",
    "__version__",
    "get_chat_model",
    "get_format",
    "get_tool",
    "register_backend",
    "register_format",
    "register_tool",
    "tool",
]

#: libraries that must not be imported by ``import qwen_agent``
HEAVY = [
    "fastapi",
    "uvicorn",
    "starlette",
    "prometheus_client",
    "llguidance",
    "openai",
    "torch",
    "transformers",
    "vllm",
    "gradio",
    "diffusers",
    "jupyter_client",
    "httpx",
    "jsonschema",
    "mcp",
    "bm25s",
    "pypdf",
    "docx",
    "selectolax",
    "Stemmer",
    "PIL",
    "numpy",
]

CHILD = f"""
import json, sys, time
t0 = time.perf_counter()
import qwen_agent
elapsed = time.perf_counter() - t0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
print(json.dumps({{"elapsed": elapsed, "heavy": heavy, "file": qwen_agent.__file__}}))
"""


def test_all_is_pinned() -> None:
    assert sorted(qwen_agent.__all__) == EXPECTED_ALL
    assert len(qwen_agent.__all__) == len(set(qwen_agent.__all__)), "duplicates in __all__"


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_exported_name_exists(name: str) -> None:
    assert getattr(qwen_agent, name, None) is not None


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from qwen_agent import *", namespace)
    namespace.pop("__builtins__")
    assert sorted(namespace) == EXPECTED_ALL


def test_exports_are_the_real_objects() -> None:
    from qwen_agent import errors, messages

    # the package attribute ``tool`` is the decorator, which shadows the submodule
    tool_module = importlib.import_module("qwen_agent.tool")
    assert callable(qwen_agent.tool) and not isinstance(qwen_agent.tool, type(errors))
    assert qwen_agent.tool is tool_module.tool
    assert qwen_agent.Tool is tool_module.Tool
    assert qwen_agent.ToolResult is messages.ToolResult
    assert qwen_agent.QwenAgentError is errors.QwenAgentError
    assert isinstance(qwen_agent.__version__, str) and qwen_agent.__version__.count(".") >= 1


def test_py_typed_ships() -> None:
    marker = resources.files("qwen_agent").joinpath("py.typed")
    assert marker.is_file()
    assert (Path(qwen_agent.__file__).parent / "py.typed").is_file()


def _run_child() -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def child_runs() -> list[dict[str, Any]]:
    """Three fresh interpreters that each time ``import qwen_agent``."""
    return [_run_child() for _ in range(3)]


def test_import_pulls_in_no_heavy_library(child_runs: list[dict[str, Any]]) -> None:
    for run in child_runs:
        assert Path(run["file"]).resolve() == (REPO_ROOT / "qwen_agent/__init__.py").resolve()
        assert run["heavy"] == []
