"""vLLM's raw engine on this machine: generated tokens/s for one sequence and for N at once.

    python benchmarks/vllm_engine.py --model DIR [--n 1 8] [--dtype float32] [--cpu-threads 0-1]

Prompts of ``--prompt`` tokens (distinct, so no prefix is shared), ``--new`` tokens each,
end of text ignored; the engine as the vllm backend starts it (loopback only, eager on CPU,
no prefix caching here). Run it with vLLM's Python (``.venv-vllm/bin/python`` on CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--cpu-threads", default="0-1")
    ap.add_argument("--prompt", type=int, default=400)
    ap.add_argument("--new", type=int, default=64)
    args = ap.parse_args()

    from qwen_agent.backends.vllm import _on_cpu, engine_env

    engine_env(args.cpu_threads)
    from vllm import AsyncEngineArgs, SamplingParams
    from vllm.sampling_params import RequestOutputKind
    from vllm.v1.engine.async_llm import AsyncLLM

    async def one(engine, i: int, new: int) -> int:
        params = SamplingParams(
            max_tokens=new, temperature=1.0, ignore_eos=True, output_kind=RequestOutputKind.DELTA
        )
        ids = [1000 + (i * 7 + k) % 20000 for k in range(args.prompt)]
        made = 0
        async for out in engine.generate({"prompt_token_ids": ids}, params, f"r{i}-{time.time()}"):
            made += len(out.outputs[0].token_ids)
        return made

    async def run() -> None:
        t0 = time.perf_counter()
        engine = AsyncLLM.from_engine_args(
            AsyncEngineArgs(
                model=args.model,
                dtype=args.dtype,
                enforce_eager=_on_cpu(),
                max_model_len=2048,
                enable_prefix_caching=False,
            )
        )
        print(f"loaded in {time.perf_counter() - t0:.1f} s ({args.dtype})")
        await one(engine, 10_000, 8)  # warm up
        for n in args.n:
            t0 = time.perf_counter()
            made = await asyncio.gather(*(one(engine, i, args.new) for i in range(n)))
            wall = time.perf_counter() - t0
            print(f"n={n}: {sum(made) / wall:.0f} generated tokens/s ({wall:.1f} s)")
        engine.shutdown()

    asyncio.run(run())


if __name__ == "__main__":
    main()
