"""The same requests against a real ``vllm serve`` and against ``qwen-agent serve``, both on
one model, with the official ``openai`` client; then the ``openai`` backend's native mode
and an Agent against vLLM. Prints what each side returned, so differences show.

    vllm serve MODEL_DIR --served-model-name tiny --enable-auto-tool-choice \\
        --tool-call-parser hermes --port 8123            # (VLLM_HOST_IP=127.0.0.1)
    python benchmarks/compat_vllm.py --vllm http://127.0.0.1:8123/v1 --model MODEL_DIR

Without ``--model`` the bundled model is served on the qwen-agent side. Greedy decoding
(``temperature=0``) on both sides, so a rerun gives the same answers.
"""

from __future__ import annotations

import argparse
import json

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city"}},
            "required": ["city"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def summary(r) -> str:
    m = r.choices[0].message
    calls = [(c.function.name, c.function.arguments) for c in (m.tool_calls or [])]
    usage = (r.usage.prompt_tokens, r.usage.completion_tokens) if r.usage else None
    return (
        f"finish={r.choices[0].finish_reason} calls={calls} content={m.content!r:.80} usage={usage}"
    )


def streamed(stream) -> str:
    calls: dict[int, list[str]] = {}
    pieces = 0
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        for tc in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, ["", ""])
            pieces += 1
            if tc.function and tc.function.name:
                slot[0] += tc.function.name
            if tc.function and tc.function.arguments:
                slot[1] += tc.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    return f"finish={finish} calls={list(calls.values())} tool-call deltas={pieces}"


def cases(client, model: str) -> list[tuple[str, str]]:
    import openai

    named = {"type": "function", "function": {"name": "get_weather"}}
    out = []
    for name, kwargs in [
        ("auto", {}),
        ("required", {"tool_choice": "required"}),
        ("named", {"tool_choice": named}),
        ("none", {"tool_choice": "none"}),
    ]:
        try:
            r = client.chat.completions.create(
                model=model, messages=ASK, tools=[WEATHER], max_tokens=40, temperature=0, **kwargs
            )
            out.append((name, summary(r)))
        except openai.APIStatusError as exc:
            out.append((name, f"HTTP {exc.status_code}: {exc.message[:100]}"))
    r = client.chat.completions.create(
        model=model,
        messages=ASK,
        tools=[WEATHER],
        tool_choice=named,
        max_tokens=40,
        temperature=0,
        stream=True,
    )
    out.append(("named, streamed", streamed(r)))
    for name, kwargs in [
        ("logprobs", {"logprobs": True}),
        ("too long", {"messages": [{"role": "user", "content": "word " * 3000}]}),
        ("max_tokens", {"max_tokens": 100_000}),
        ("unknown model", {"model": "nope"}),
    ]:
        args = {"model": model, "messages": ASK, "max_tokens": 5, **kwargs}
        try:
            client.chat.completions.create(**args)
            out.append((name, "200"))
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            out.append((name, f"{type(exc).__name__} {exc.status_code} param={body.get('param')}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm", required=True, help="base URL of vllm serve, .../v1")
    parser.add_argument("--vllm-model", default="tiny", help="its served model name")
    parser.add_argument("--model", default="", help="model directory for qwen-agent serve")
    args = parser.parse_args()

    import openai

    from qwen_agent import Agent, tool
    from qwen_agent.llm import get_chat_model
    from qwen_agent.serving import Server

    vllm = openai.OpenAI(base_url=args.vllm, api_key="EMPTY", max_retries=0)
    ours_model = get_chat_model({"model": args.model})
    with Server(ours_model) as server:
        ours = openai.OpenAI(base_url=server.url, api_key="EMPTY", max_retries=0)
        rows = zip(cases(vllm, args.vllm_model), cases(ours, "qwen-agent"), strict=True)
        for (name, theirs), (_, mine) in rows:
            print(f"{name}\n  vllm:        {theirs}\n  qwen-agent:  {mine}")

    @tool
    def get_weather(city: str) -> str:
        """Current weather of a city.

        Args:
            city: the city
        """
        return f"Sunny in {city}, 21 C."

    from qwen_agent.llm import FunctionChoice, ModelRequest, drain
    from qwen_agent.messages import Message
    from qwen_agent.tool import ToolSpec

    native = get_chat_model({"base_url": args.vllm, "model": args.vllm_model, "native_tools": True})
    out = drain(
        native,
        ModelRequest(
            messages=[Message(role="user", content=ASK[0]["content"])],
            tools=(ToolSpec.of(WEATHER),),
            tool_choice=FunctionChoice(name="get_weather"),
            generation={"max_tokens": 40, "temperature": 0},
        ),
    )
    print(f"openai backend, native, named: calls={out.tool_calls} usage={out.usage}")
    for native_tools in (True, False):
        llm = {"base_url": args.vllm, "model": args.vllm_model, "native_tools": native_tools}
        agent = Agent(llm=llm, tools=[get_weather], max_steps=3, generation={"temperature": 0})
        result = agent.chat(ASK[0]["content"])
        steps = [
            (m.role, [c.name for c in m.tool_calls] or json.dumps(m.text)[:60])
            for m in result.messages
        ]
        print(f"Agent over vllm (native_tools={native_tools}): {steps}")


if __name__ == "__main__":
    main()
