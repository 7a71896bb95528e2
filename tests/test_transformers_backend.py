"""The transformers backend and the bundled model, loaded and run for real on the CPU."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

pytest.importorskip("torch", reason="the [local] extra (torch, transformers) is not installed")

from qwen_agent import Agent, tool  # noqa: E402
from qwen_agent.backends.transformers import TransformersChatModel, bundled_model_path  # noqa: E402
from qwen_agent.errors import BackendConnectionError, BackendResponseError, ConfigError  # noqa: E402
from qwen_agent.llm import GenerationConfig, default_chat_model, drain, get_chat_model  # noqa: E402
from qwen_agent.messages import Message  # noqa: E402

BUNDLED = bundled_model_path()


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory):
    """A randomly initialised Qwen2 with the bundled tokenizer and a 96-token window."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("small-qwen2")
    tok = AutoTokenizer.from_pretrained(BUNDLED)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=96,
        tie_word_embeddings=True,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
    )
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def small(small_model_dir):
    return TransformersChatModel(str(small_model_dir), threads=1)


def user(text):
    return [Message(role="user", content=text)]


def test_bundled_model_is_small_safetensors_with_chatml_template():
    files = {p.name: p.stat().st_size for p in BUNDLED.iterdir()}
    assert "model.safetensors" in files and files["model.safetensors"] < 30 * 2**20
    cfg = json.loads((BUNDLED / "config.json").read_text())
    assert cfg["architectures"] == ["Qwen2ForCausalLM"]
    assert cfg["hidden_size"] // cfg["num_attention_heads"] >= 32  # vLLM CPU needs >= 32
    template = json.loads((BUNDLED / "tokenizer_config.json").read_text()).get("chat_template")
    template = template or (BUNDLED / "chat_template.jinja").read_text()
    assert "<|im_start|>" in template and "<tool_call>" in template


def test_stream_equals_drain_and_stop_words_cut_the_text(small):
    cfg = GenerationConfig(max_tokens=24, temperature=1.0, seed=7)  # seeded: repeatable
    whole = drain(small, user("hello"), cfg)
    assert whole.finish_reason in ("stop", "length") and whole.text
    deltas = list(small.stream(user("hello"), cfg))
    assert "".join(d.text for d in deltas) == whole.text  # same seed, same text
    assert [d.finish_reason for d in deltas[:-1]] == [None] * (len(deltas) - 1)
    # a stop word from the middle of that text cuts it there, without the stop word
    text = whole.text
    mid = next(
        i
        for i in range(len(text) // 3, len(text) - 3)
        if text[i : i + 3].strip() and text.find(text[i : i + 3]) == i
    )
    cut = drain(small, user("hello"), cfg.with_stop([text[mid : mid + 3]]))
    assert cut.text == text[:mid] and cut.finish_reason == "stop"


def test_max_tokens_gives_length(small):
    out = drain(small, user("hello"), GenerationConfig(max_tokens=3))
    assert out.finish_reason == "length"
    assert len(small.tokenizer(out.text, add_special_tokens=False)["input_ids"]) <= 4


def test_history_is_truncated_to_the_window_with_a_warning(small, caplog):
    history = [Message(role="system", content="sys")]
    for i in range(6):
        history += [
            Message(role="user", content=f"question {i} " * 3),
            Message(role="assistant", content=f"answer {i} " * 3),
        ]
    history.append(Message(role="user", content="last"))
    assert small.count_tokens(history) > 96
    with caplog.at_level(logging.WARNING, logger="qwen_agent"):
        out = drain(small, history, GenerationConfig(max_tokens=8))
    assert out.text is not None
    assert "dropped the" in caplog.text and "96-token context window" in caplog.text
    with pytest.raises(BackendResponseError, match="context window"):
        drain(small, user("word " * 200), GenerationConfig(max_tokens=8))
    with pytest.raises(ConfigError, match="leaves no room"):
        list(small.stream(user("x"), GenerationConfig(max_tokens=500)))


def test_missing_and_broken_model_directories(tmp_path, small_model_dir):
    with pytest.raises(BackendConnectionError, match="does not exist"):
        TransformersChatModel(str(tmp_path / "nope"))
    with pytest.raises(BackendConnectionError, match="config.json is missing"):
        TransformersChatModel(str(tmp_path))
    broken = tmp_path / "broken"
    shutil.copytree(small_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(BackendConnectionError, match="cannot load model"):
        TransformersChatModel(str(broken))
    with pytest.raises(ConfigError, match="unknown options"):
        get_chat_model({"backend": "transformers", "model": str(small_model_dir), "gpu": 1})


def test_registry_builds_the_backend_from_config(small_model_dir):
    llm = get_chat_model({"model": str(small_model_dir), "dtype": "float32", "threads": 1})
    assert isinstance(llm, TransformersChatModel) and llm.device == "cpu"
    assert llm.max_context == 96


# -- the bundled model, end to end ------------------------------------------------------------


def test_default_agent_uses_the_bundled_model_and_calls_a_custom_tool():
    agent = Agent(tools=[multiply])
    assert agent.llm is default_chat_model()
    answer, messages = agent.chat("What is 12 * 34?")
    call = messages[1].tool_calls[0]
    assert (call.name, call.arguments) == ("multiply", {"a": 12, "b": 34})
    assert messages[2].text == "408"
    assert "408" in answer


def test_bundled_model_answers_directly_when_no_tool_fits():
    answer, messages = Agent(tools=[multiply]).chat("What is the capital of France?")
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].tool_calls == []
    assert "Paris" in answer


def test_bundled_model_picks_among_several_tools_and_copies_arguments():
    @tool
    def get_weather(city: str) -> str:
        """Get the weather in a city."""
        return "sunny, 24 C"

    answer, messages = Agent(tools=[multiply, get_weather]).chat("What is the weather in Oslo?")
    call = messages[1].tool_calls[0]
    assert (call.name, call.arguments) == ("get_weather", {"city": "Oslo"})
    assert "sunny, 24 C" in answer
