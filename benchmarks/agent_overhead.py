"""Framework overhead per agent run, in microseconds.

One run: a ScriptedLLM streams one hermes tool call in 4-character chunks, the tool runs,
then the model streams a short final answer. The time the ScriptedLLM itself spends making
its chunks is measured separately and subtracted, so the figure is the framework's own work:
prompt building, incremental parsing, validation, the tool dispatch and the message log.

    python benchmarks/agent_overhead.py [--runs 2000] [--format hermes|react]
"""

from __future__ import annotations

import argparse
import statistics
import time

from qwen_agent import Agent, tool
from qwen_agent.formats import get_format
from qwen_agent.llm import GenerationConfig, ModelRequest
from qwen_agent.messages import ToolCall
from qwen_agent.testing import ScriptedLLM


@tool
def get_weather(city: str, unit: str = "C") -> str:
    """Current weather of a city.

    Args:
        city: the city's name.
        unit: C or F.
    """
    return f"sunny, 21 {unit} in {city}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--format", default="hermes", choices=["hermes", "react"])
    args = ap.parse_args()

    fmt = get_format(args.format)
    call = fmt.render_calls(
        [ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "C"})],
        "Let me check the weather.",
    )
    answer = "It is sunny and 21 degrees in Paris today."
    if args.format == "react":
        answer = f"Thought: I now know the final answer\nFinal Answer: {answer}"
    llm = ScriptedLLM([call, answer], chunk_size=4)
    agent = Agent(llm=llm, tools=[get_weather], format=args.format)

    # the model's own cost: producing the same chunks with nothing consuming them
    bare = ScriptedLLM([call, answer], chunk_size=4)
    config = GenerationConfig().with_stop(fmt.stop_words)

    def model_only() -> None:
        for _ in range(2):
            for _ in bare.stream(ModelRequest(messages=[], generation=config)):
                pass

    def run() -> None:
        for _ in agent.run("What is the weather in Paris?"):
            pass

    for _ in range(200):  # warm up: thread pool, imports, caches
        run()
        model_only()
    totals, models = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        run()
        t1 = time.perf_counter()
        model_only()
        t2 = time.perf_counter()
        totals.append(t1 - t0)
        models.append(t2 - t1)
        llm.prompts.clear()
        bare.prompts.clear()
    chunks = (len(call) + 3) // 4 + (len(answer) + 3) // 4
    total = statistics.median(totals) * 1e6
    model = statistics.median(models) * 1e6
    print(f"format={args.format} runs={args.runs} chunks_per_run={chunks}")
    print(f"median total per run:      {total:8.1f} us")
    print(f"median scripted model:     {model:8.1f} us")
    print(f"framework overhead per run: {total - model:8.1f} us  (goal < 300 us)")


if __name__ == "__main__":
    main()
