"""Load time, peak memory, first-token latency, decode speed and a whole tool turn.

    python benchmarks/generation_speed.py [--model DIR] [--tokens 200] [--runs 5]

Default: the bundled model through the transformers backend, greedy decoding, a tool-use
prompt like the agent's (system prompt with two tools, one question). First-token latency
goes through the backend's stream, cold (the prefix cache emptied first) and warm (the same
prompt again, its KV cache reused); decode speed is the model's own, ``--tokens`` new
tokens after that prompt with the end of turn ignored. The last lines time a guarded tool
call alone, and a whole tool turn through ``Agent`` (the call, the tool's result, the
answer), as a user waits for it. Peak RSS is the process's high-water mark (Linux).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Any

from qwen_agent import Agent
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.llm import GenerationConfig, LLMConfig, ModelRequest, get_chat_model
from qwen_agent.messages import Message
from qwen_agent.tool import ToolSpec, tool


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return "sunny"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--format", default="hermes", choices=["hermes", "react"], help="tool turn")
    args = ap.parse_args()

    t0 = time.perf_counter()
    llm = get_chat_model(LLMConfig(backend="transformers", model=args.model))
    load = time.perf_counter() - t0
    prompt = HermesFormat().build_prompt(
        [Message(role="user", content="Write a long story about the weather in Paris.")],
        [multiply, get_weather],
    )
    n_prompt = llm.count_tokens(prompt)
    # ignore end of turn: measure a fixed number of new tokens
    cfg = GenerationConfig(max_tokens=args.tokens)
    prefixes = getattr(llm, "prefixes", None)

    def first_token() -> float:
        start = time.perf_counter()
        for delta in llm.stream(ModelRequest(messages=prompt, generation=cfg)):
            if delta.text:
                break
        return time.perf_counter() - start

    first_token()  # warms up
    cold, warm = [], []
    for _ in range(args.runs):
        if prefixes is not None:
            prefixes.clear()  # cold: the whole prompt is computed
        cold.append(first_token())
        warm.append(first_token())  # warm: the same prompt again, from the prefix cache
    rates = _decode_rates(llm, prompt, args.tokens, args.runs)
    # a whole tool call, decoded under the tool guard (and the copy nudge, if on)
    ask = HermesFormat().build_prompt(
        [Message(role="user", content="What is the weather in Paris?")],
        [multiply, get_weather],
    )
    call_times, call_text = [], ""
    for _ in range(args.runs + 1):
        start = time.perf_counter()
        req = ModelRequest(
            messages=ask,
            tools=tuple(ToolSpec.of(t) for t in (multiply, get_weather)),
            format="hermes",
            generation=GenerationConfig(max_tokens=60),
        )
        call_text = "".join(d.text for d in llm.stream(req))
        call_times.append(time.perf_counter() - start)
    n_call = len(llm.tokenizer(call_text, add_special_tokens=False)["input_ids"])
    turns, answer = [], ""
    agent = Agent(llm=llm, tools=[multiply, get_weather], format=args.format)
    for _ in range(args.runs + 1):
        start = time.perf_counter()
        answer, _ = agent.chat("What is 12 * 34?")
        turns.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model: {llm.model_name} on {llm.device}")
    print(f"load time:            {llm.load_seconds:6.2f} s   (goal < 5 s; model and tokenizer)")
    print(f"import + load:        {load:6.2f} s   (also importing torch and transformers)")
    print(f"prompt:               {n_prompt} tokens")
    print(
        f"first-token latency:  {statistics.median(cold) * 1e3:6.1f} ms cold, "
        f"{statistics.median(warm) * 1e3:6.1f} ms warm (medians of {args.runs}; warm: the "
        "prompt's KV from the prefix cache)"
    )
    print(
        f"decode speed:         {statistics.median(rates):6.0f} tokens/s "
        f"(median, {args.tokens} new tokens after the first, end of turn ignored)"
    )
    print(
        f"guarded tool call:    {statistics.median(call_times[1:]) * 1e3:6.1f} ms "
        f"(median, {n_call} tokens: {call_text.strip()!r})"
    )
    print(
        f"whole tool turn:      {statistics.median(turns[1:]):6.2f} s  (median; goal < 3 s; "
        f"call, result, answer: {answer!r})"
    )
    print(f"peak RSS:             {peak:6.0f} MiB")


def _decode_rates(llm: Any, prompt: list[Message], tokens: int, runs: int) -> list[float]:
    """Tokens per second of the model's own greedy decoding after its first token."""
    import torch

    ids = torch.tensor([llm._encode(llm.render(prompt))], device=llm.device)
    rates = []
    with torch.inference_mode():
        for _ in range(runs + 1):
            start = time.perf_counter()
            llm.model.generate(ids, max_new_tokens=1, do_sample=False)
            first = time.perf_counter() - start
            start = time.perf_counter()
            llm.model.generate(
                ids, max_new_tokens=tokens + 1, min_new_tokens=tokens + 1, do_sample=False
            )
            rates.append(tokens / max(time.perf_counter() - start - first, 1e-9))
    return rates[1:]


if __name__ == "__main__":
    main()
