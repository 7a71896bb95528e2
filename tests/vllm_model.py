"""The model the vLLM tests serve: ``$QWEN_VLLM_TEST_MODEL``, or a snapshot of the
committed bundled-model-v2 run (the converted SmolLM2-135M base, built once into
``~/.cache/qwen-agent/smol-base``, with the run's adapter merged in)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def model_dir(tmp_path_factory) -> Path:
    given = os.environ.get("QWEN_VLLM_TEST_MODEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("vllm-model") / "smol-agent"
    subprocess.run(
        [sys.executable, "-m", "training.smol_agent.snapshot", "--out", str(out)],
        cwd=ROOT,
        check=True,
    )
    return out
