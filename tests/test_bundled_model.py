"""The bundled models, loaded for real and run with greedy decoding on fixed prompts.

The default, ``qwen-smol-agent``: the README's examples end to end (its example tools, the
code interpreter with no tool given) through ``Agent()`` and ``qwen-agent chat``. The first
bundled model, ``qwen-tiny-agent``, pinned by name: tool calls on its training's own
wording and the decoding aids its folder switches on."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the [local] extra (torch, transformers) is not installed")

from qwen_agent import Agent, tool  # noqa: E402
from qwen_agent.bundled import TINY_AGENT  # noqa: E402
from qwen_agent.llm import default_chat_model  # noqa: E402
from tests.sandbox_helpers import requires_sandbox  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _example_tools():
    spec = importlib.util.spec_from_file_location("example_tools", ROOT / "examples/tools.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLES = _example_tools()
drawn: list[str] = []
configs: list[dict] = []


@tool
def image_gen(prompt: str) -> str:
    """Generate an image from a text description.

    Args:
        prompt: what the image shows
    """
    drawn.append(prompt)
    return "image saved as image_1.png"


@tool
def update_agent_config(name: str, description: str, instructions: str) -> str:
    """Update the agent being built: its name, description and instructions.

    Args:
        name: short name of the agent
        description: one-line description
        instructions: the agent's instructions
    """
    configs.append({"name": name, "description": description, "instructions": instructions})
    return "ok"


@pytest.fixture(scope="module")
def llm():
    """The tiny model, by name (fast; its decoding aids on)."""
    from qwen_agent.backends.transformers import TransformersChatModel

    return TransformersChatModel("qwen-tiny-agent", threads=2)


@pytest.fixture(scope="module")
def smol():
    """The default model (merged into the cache on its first use here)."""
    return default_chat_model()


def calls(messages):
    return [(c.name, c.arguments) for m in messages for c in m.tool_calls]


def test_the_bundled_model_is_a_small_qwen2_checkpoint():
    config = json.loads((TINY_AGENT / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["hidden_size"] // config["num_attention_heads"] >= 32  # vLLM on CPU
    assert (TINY_AGENT / "model.safetensors").stat().st_size < 30 * 2**20
    tokenizer = json.loads((TINY_AGENT / "tokenizer.json").read_text())
    specials = {t["content"] for t in tokenizer["added_tokens"] if t["special"]}
    assert {"<|im_start|>", "<|im_end|>", "<|endoftext|>"} <= specials


def test_agent_without_llm_uses_the_default_bundled_model(smol, llm):
    assert Agent().llm is smol
    assert smol.model_name == "qwen-smol-agent" and smol.device == "cpu"  # a name, not a path
    # no decoding aids for it: they exist for the tiny model, whose folder switches them on
    assert smol.copy_bias == 0 and not smol.lookahead and not smol.relevance
    assert smol.tool_guard
    assert llm.model_name == TINY_AGENT.name
    aids = json.loads((TINY_AGENT / "decoding_aids.json").read_text())
    assert llm.copy_bias == aids["copy_bias"] > 0 and llm.lookahead and llm.relevance
    assert llm.tool_guard


def test_the_default_model_runs_the_readme_examples(smol):
    """The README's example tools, worded as there: the right tool with the right values,
    an answer that uses the result; a greeting gets words, not a call."""
    agent = Agent(llm=smol, tools=[EXAMPLES.multiply])
    answer, messages = agent.chat("What is 12 * 34?")
    assert calls(messages) == [("multiply", {"a": 12, "b": 34})]
    assert "408" in answer
    agent = Agent(llm=smol, tools=[EXAMPLES.get_weather])
    answer, messages = agent.chat("What is the weather in Oslo?")
    assert calls(messages) == [("get_weather", {"city": "Oslo"})]
    assert "24" in answer
    agent = Agent(llm=smol, tools=[EXAMPLES.multiply, EXAMPLES.get_weather])
    answer, messages = agent.chat("Hi! How are you today?")
    assert calls(messages) == [] and len(answer.split()) >= 3 and "<" not in answer


def test_decoding_aids_follow_the_folder_not_the_path(tmp_path):
    """A copy of the bundled model elsewhere keeps its aids; without the file, none."""
    import shutil

    from qwen_agent.backends.transformers import TransformersChatModel

    copy = tmp_path / "copy"
    shutil.copytree(TINY_AGENT, copy)
    assert TransformersChatModel(str(copy), threads=1).relevance
    (copy / "decoding_aids.json").unlink()
    plain = TransformersChatModel(str(copy), threads=1)
    assert plain.copy_bias == 0 and not plain.lookahead and not plain.relevance
    (copy / "decoding_aids.json").write_text('{"temperature": 2}')
    from qwen_agent.errors import ConfigError

    with pytest.raises(ConfigError, match="may set only"):
        TransformersChatModel(str(copy), threads=1)


def test_tiny_custom_tool_end_to_end(llm):
    answer, messages = Agent(llm=llm, tools=[EXAMPLES.multiply]).chat("What is 12 * 34?")
    assert calls(messages) == [("multiply", {"a": 12, "b": 34})]
    assert messages[2].text == "408"
    assert "408" in answer


def test_tiny_picks_the_right_tool_of_two(llm):
    agent = Agent(llm=llm, tools=[EXAMPLES.multiply, EXAMPLES.get_weather])
    answer, messages = agent.chat("What is the weather in Oslo?")
    assert calls(messages) == [("get_weather", {"city": "Oslo"})]
    assert "24 C" in answer
    # a new conversation: a second user turn is outside the tiny model's training (about
    # half right, see benchmarks/tool_eval.py --history)
    agent = Agent(llm=llm, tools=[EXAMPLES.multiply, EXAMPLES.get_weather])
    answer, messages = agent.chat("What is 7 * 8?")
    assert calls(messages) == [("multiply", {"a": 7, "b": 8})]
    assert "56" in answer


def test_tiny_answers_without_a_tool_when_none_is_needed(llm):
    agent = Agent(llm=llm, tools=[EXAMPLES.multiply, EXAMPLES.get_weather])
    answer, messages = agent.chat("What is the capital of France?")
    assert calls(messages) == [] and "Paris" in answer
    answer, messages = agent.chat("Hello!")
    assert calls(messages) == [] and answer.strip()


def test_tiny_draw_requests_call_image_gen_with_the_prompt(llm):
    drawn.clear()
    answer, messages = Agent(llm=llm, tools=[image_gen, EXAMPLES.multiply]).chat(
        "Draw a red fox in the snow"
    )
    assert drawn == ["a red fox in the snow"]
    assert calls(messages) == [("image_gen", {"prompt": "a red fox in the snow"})]


def test_tiny_builder_request_updates_the_agent_config(llm):
    from training.tiny_agent.data import BUILDER_SYSTEM

    configs.clear()
    agent = Agent(llm=llm, tools=[update_agent_config], instructions=BUILDER_SYSTEM)
    agent.chat("Make an agent that gives tips on gardening.")
    assert len(configs) == 1
    assert "gardening" in configs[0]["name"].lower()
    assert "gives tips on gardening" in configs[0]["description"]


@pytest.mark.timeout(400)
def test_readme_command_runs_offline_on_the_bundled_model():
    """The README's run command: the default bundled model calls the example tool; no
    network is needed (the hub is switched off)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "qwen_agent.cli", "chat", "What is 12 * 34?"]
        + ["--tool", "examples/tools.py:multiply"],
        capture_output=True,
        text=True,
        timeout=360,  # a first use merges the model into the cache (about 20 s)
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "multiply" in proc.stderr and "<- 408" in proc.stderr
    assert "408" in proc.stdout


@requires_sandbox
@pytest.mark.timeout(400)
def test_arithmetic_goes_through_the_sandboxed_code_interpreter():
    """`qwen-agent chat "What is 12 * 34?"` with no --tool: the bundled model writes Python,
    a real sandboxed kernel runs it, the answer uses its output."""
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "qwen_agent.cli", "chat", "What is 12 * 34?"],
        capture_output=True,
        text=True,
        timeout=360,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "code_interpreter" in proc.stderr and "<- 408" in proc.stderr
    assert "408" in proc.stdout


def test_tiny_relevance_check_fixes_held_out_picks_and_false_calls(llm):
    """Held-out dialogues (tool names never seen in training) the model alone gets wrong:
    the relevance check names the tool the question is about, and answers directly where
    no listed tool fits it."""
    from qwen_agent.backends.transformers import TransformersChatModel
    from qwen_agent.formats.hermes import HermesFormat
    from qwen_agent.llm import GenerationConfig, drain

    by_question = {d.messages[0].text: d for d in dialogues_eval()}
    lookup = by_question["Tell me the contact card of Alice."]
    chat = by_question["I need the protein content of soup."]
    assert chat.expected_call is None and "protein" not in json.dumps(chat.tools)
    plain = TransformersChatModel("qwen-tiny-agent", relevance=False)
    assert llm.relevance and not plain.relevance

    def first_call(model, dialogue):
        out = drain(model, dialogue.request(GenerationConfig(max_tokens=60)))
        found = HermesFormat().parse(out.text, "stop").calls
        return (found[0].name, found[0].arguments) if found else out.text

    assert first_call(llm, lookup) == ("lookupContactCard", {"person": "Alice"})
    assert first_call(plain, lookup)[0] != "lookupContactCard"
    assert isinstance(first_call(llm, chat), str)
    assert not isinstance(first_call(plain, chat), str)


def test_tiny_answers_after_a_tool_result_quote_it(llm):
    """After a tool's result the copy nudge keeps the answer's quote of the result whole
    (held-out dialogues whose answer the model alone garbles)."""
    from qwen_agent.backends.transformers import TransformersChatModel
    from qwen_agent.formats.hermes import HermesFormat
    from qwen_agent.llm import GenerationConfig, drain
    from qwen_agent.tool import ToolSpec
    from qwen_agent.turn import build_request

    plain = TransformersChatModel("qwen-tiny-agent", copy_bias=0.0)
    by_question = {d.messages[0].text: d for d in dialogues_eval()}
    for question, result in [
        ("What is the conversion rate from AUD to JPY?", "1.37"),
        ("Can you lookup the market cap of INTC?", "2.9 trillion USD"),
    ]:
        d = by_question[question]
        assert d.messages[2].text == result
        request = build_request(
            HermesFormat(),
            d.messages[:3],
            [ToolSpec.of(t) for t in d.tools],
            instructions=d.instructions,
            generation=GenerationConfig(max_tokens=60),
        ).request
        answer = drain(llm, request).text
        assert result in answer and "<tool_call>" not in answer, answer
        assert result not in drain(plain, request).text


def dialogues_eval():
    from training.tiny_agent.data import dialogues

    return dialogues(100, seed=777, split="eval")


@pytest.mark.timeout(900)  # the first use merges v2 into the cache (about 20 s here)
def test_the_default_model_calls_held_out_tools_the_tiny_model_cannot():
    """``llm={"model": "qwen-smol-agent"}`` (the default) loads the bundled model v2 (merged
    from the shipped GGUF base and adapter on first use): on requests worded as people word
    them, to tools it never saw in training (the held-out set's), it calls the right tool
    with the right value, where the tiny model does not; and it chats in plain words."""
    from benchmarks.heldout.tools import TOOLS
    from qwen_agent.bundled import resolve
    from qwen_agent.llm import LLMConfig, get_chat_model

    cases = [
        (["set_alarm", "get_recipe"], "wake me up at 07:30", "set_alarm", {"time": "07:30"}),
        (["flight_status", "find_book"], "is flight BA286 on time?", "flight_status", {}),
        (["find_book", "define_word"], "find the book Dune", "find_book", {"title": "Dune"}),
    ]

    def first_calls(model: str) -> list[tuple[str, dict]]:
        llm = get_chat_model(LLMConfig(model=model, threads=2))
        out = []
        for names, question, _, _ in cases:
            agent = Agent(llm=llm, tools=[TOOLS[n] for n in names], max_steps=1)
            calls = [e.call for e in agent.run(question) if e.type == "tool_call"]
            out.append((calls[0].name, calls[0].arguments) if calls else ("", {}))
        return out

    folder = resolve("qwen-smol-agent")
    assert folder is not None and (folder / "model.safetensors").is_file()
    v2 = first_calls("qwen-smol-agent")
    for (_, question, name, args), (got, got_args) in zip(cases, v2, strict=True):
        assert got == name, (question, got, got_args)
        assert all(got_args.get(k) == v for k, v in args.items()), (question, got_args)
    assert "BA286" in json.dumps(v2[1][1])
    tiny = first_calls("qwen-tiny-agent")
    assert sum(t != v for t, v in zip(tiny, v2, strict=True)) >= 2  # the test tells them apart

    chat = Agent(llm={"model": "qwen-smol-agent", "threads": 2}, generation={"max_tokens": 40})
    answer = chat.chat("Hi! How are you today?").answer
    assert len(answer.split()) >= 3 and "<" not in answer, answer
