"""Qwen3 thinking end to end: a chat template that opens ``<think>`` in the prompt, on a real
transformers model, through the backend, the Agent and ``qwen-agent serve``."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="the [local] extra (torch, transformers) is not installed")

from qwen_agent import Agent  # noqa: E402
from qwen_agent.backends.transformers import TransformersChatModel  # noqa: E402
from qwen_agent.events import CallParseError, FinalEvent, ReasoningDelta, TextDelta  # noqa: E402
from qwen_agent.llm import GenerationConfig, ModelRequest, drain  # noqa: E402
from qwen_agent.messages import Message  # noqa: E402
from training.tiny_agent.data import dialogues  # noqa: E402
from training.tiny_agent.train import train_tokenizer  # noqa: E402

#: Qwen3-Thinking-2507's shape: the generation prompt opens the reasoning; with
#: enable_thinking=false it holds an empty one instead (Qwen3's hybrid templates)
TEMPLATE = (
    "{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}{%- else %}{{ '<think>\\n' }}{%- endif %}{%- endif %}"
)
REPLY = "Ok</think>\n\nSunny."  # tokens that do not repeat: the model maps token to token


@pytest.fixture(scope="module")
def thinking_model_dir(tmp_path_factory):
    """A Qwen2 checkpoint whose greedy reply to the opened ``<think>`` is exactly
    :data:`REPLY`: its layers add nothing (zero output projections), so each step's logits
    depend on the current token alone, and the output head maps each token of the reply to
    the next one. Real weights, a real tokenizer and chat template, real ``generate``."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("thinking-qwen2")
    train_tokenizer([d.text() for d in dialogues(300, seed=3)] + [REPLY] * 50, 600, out)
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = TEMPLATE
    config_path.write_text(json.dumps(config))
    (out / "chat_template.jinja").unlink(missing_ok=True)
    tok = AutoTokenizer.from_pretrained(out)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Weather in Paris?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    chain = [tok(prompt, add_special_tokens=False)["input_ids"][-1]]
    chain += tok(REPLY, add_special_tokens=False)["input_ids"] + [eos]
    assert len(set(chain[1:])) == len(chain) - 1 and chain[0] not in chain[1:], chain
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=256,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        eos_token_id=eos,
    )
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        head = torch.zeros_like(model.lm_head.weight)
        for current, following in zip(chain, chain[1:], strict=False):
            head[following] = 10 * embed[current] / embed[current].norm()
        model.lm_head.weight.copy_(head)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def thinker(thinking_model_dir):
    return TransformersChatModel(str(thinking_model_dir), threads=1)


ASK = [Message(role="user", content="Weather in Paris?")]


def test_the_backend_reports_a_reasoning_the_prompt_opened(thinker):
    deltas = list(thinker.stream(ModelRequest(messages=ASK, generation=GenerationConfig())))
    assert deltas[0].text == "<think>\n"  # from the rendered prompt's tail, not the output
    assert "".join(d.text for d in deltas) == "<think>\n" + REPLY
    # enable_thinking=false: the template holds an empty reasoning, none is opened
    assert thinker.render(ASK, thinking=False).endswith("<think>\n\n</think>\n\n")
    off = drain(thinker, ModelRequest(messages=ASK, thinking=False, generation={"max_tokens": 3}))
    assert not off.text.startswith("<think>")


def test_an_agent_streams_the_reasoning_and_a_clean_answer(thinker):
    events = list(Agent(llm=thinker).run("Weather in Paris?"))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    answer = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert reasoning == "Ok" and answer == "Sunny."
    final = events[-1]
    assert isinstance(final, FinalEvent) and final.message.reasoning == "Ok"
    assert not [e for e in events if isinstance(e, CallParseError)]


def test_reasoning_that_ends_the_turn_is_shown_to_the_model_and_the_loop_goes_on(thinker):
    """Cut inside its reasoning by max_tokens: the model is told, the loop is bounded."""
    agent = Agent(llm=thinker, max_steps=2, generation={"max_tokens": 1})
    events = list(agent.run("Weather in Paris?"))
    errors = [e.message for e in events if isinstance(e, CallParseError)]
    assert len(errors) == 2 and all("ended inside its reasoning" in e for e in errors)
    final = events[-1]
    assert final.stop_reason == "max_steps"
    observations = [m for m in final.messages if m.role == "tool"]
    assert "ended inside its reasoning" in observations[0].text


def test_serve_returns_reasoning_content_and_honours_enable_thinking(thinker):
    openai = pytest.importorskip("openai")
    from qwen_agent.serving import Server

    with Server(thinker) as server:
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
        ask = [{"role": "user", "content": "Weather in Paris?"}]
        r = client.chat.completions.create(model="qwen-agent", messages=ask)
        message = r.choices[0].message
        assert message.content == "Sunny."
        assert message.model_extra["reasoning_content"] == "Ok"
        chunks = list(client.chat.completions.create(model="qwen-agent", messages=ask, stream=True))
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        assert "".join(d.content or "" for d in deltas) == "Sunny."
        assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == (
            "Ok"
        )
        r = client.chat.completions.create(
            model="qwen-agent",
            messages=ask,
            max_tokens=3,
            extra_body={"chat_template_kwargs": {"enable_thinking": False}},
        )
        assert "reasoning_content" not in r.choices[0].message.model_extra
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(
                model="qwen-agent", messages=ask, extra_body={"chat_template_kwargs": {"x": 1}}
            )
        assert exc.value.param == "chat_template_kwargs.x"
