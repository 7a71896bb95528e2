"""The transformers backend and the bundled model, loaded and run for real on the CPU."""

from __future__ import annotations

import logging
import shutil

import pytest

pytest.importorskip("torch", reason="the [local] extra (torch, transformers) is not installed")

from qwen_agent import Agent, tool  # noqa: E402
from qwen_agent.backends.transformers import TransformersChatModel  # noqa: E402
from qwen_agent.errors import (  # noqa: E402
    BackendConnectionError,
    ConfigError,
    ContextWindowError,
)
from qwen_agent.events import FinalEvent  # noqa: E402
from qwen_agent.llm import GenerationConfig, ModelRequest, drain, get_chat_model  # noqa: E402
from qwen_agent.messages import Message  # noqa: E402
from qwen_agent.tool import ToolSpec  # noqa: E402
from training.tiny_agent.data import dialogues  # noqa: E402
from training.tiny_agent.train import train_tokenizer  # noqa: E402


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.fixture(scope="module")
def small_model_dir(tmp_path_factory):
    """A small randomly initialised Qwen2 checkpoint with a 96-token window and a byte-level
    BPE tokenizer trained here by the project's own training code (ChatML template)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("small-qwen2")
    texts = [d.text() for d in dialogues(300, seed=3)]
    tok = train_tokenizer(texts, 600, out)
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
    return out


@pytest.fixture(scope="module")
def small(small_model_dir):
    return TransformersChatModel(str(small_model_dir), threads=1)


def user(text):
    return [Message(role="user", content=text)]


def test_stream_equals_drain_and_stop_words_cut_the_text(small):
    cfg = GenerationConfig(max_tokens=24, temperature=1.0, seed=7)  # seeded: repeatable
    whole = drain(small, user("hello"), cfg)
    assert whole.finish_reason in ("stop", "length") and whole.text
    deltas = list(small.stream(ModelRequest(messages=user("hello"), generation=cfg)))
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
    assert "left out the" in caplog.text and "96-token context window" in caplog.text
    with pytest.raises(ContextWindowError, match="context window") as too_long:
        drain(small, user("word " * 200), GenerationConfig(max_tokens=8))
    assert too_long.value.param == "messages"
    # a request that must not lose history says so instead of dropping it
    strict = ModelRequest(
        messages=history, generation=GenerationConfig(max_tokens=8), on_overflow="error"
    )
    with pytest.raises(ContextWindowError, match="context window"):
        drain(small, strict)
    with pytest.raises(ContextWindowError, match="leaves no room") as exc:
        list(
            small.stream(
                ModelRequest(messages=user("x"), generation=GenerationConfig(max_tokens=500))
            )
        )
    assert exc.value.param == "max_tokens"


def test_trimming_drops_whole_old_exchanges_never_the_question_or_its_call(small):
    """The current question, the call and the tool result that answers it stay, however
    long the history; older exchanges go whole, oldest first, and the stream says so."""
    from qwen_agent.formats.hermes import HermesFormat
    from qwen_agent.messages import ToolCall

    old = []
    for i in range(4):
        old += [
            Message(role="user", content=f"old question {i} " * 2),
            Message(role="assistant", content=f"old answer {i} " * 2),
        ]
    call = ToolCall(id="c1", name="multiply", arguments={"a": 12, "b": 34})
    current = [
        Message(role="user", content="What is 12 * 34?"),
        Message(role="assistant", content="", tool_calls=[call]),
        Message(role="tool", content="408", tool_call_id="c1", name="multiply"),
    ]
    prompt = HermesFormat().build_prompt(old + current, [], "")
    assert small.count_tokens(prompt) > 96 - 8
    ids, _, trimmed, _ = small._fit(prompt, 8)
    kept = small.tokenizer.decode(ids)
    assert "What is 12 * 34?" in kept and "408" in kept and '"multiply"' in kept
    assert "old question 3" in kept or trimmed.exchanges == 4  # newest old ones stay longest
    assert "old question 0" not in kept and "old answer 0" not in kept
    assert trimmed is not None and trimmed.context_window == 96 and trimmed.max_tokens == 8
    assert trimmed.messages == 2 * trimmed.exchanges  # whole exchanges only
    # the first delta carries it, and the agent turns it into an event
    deltas = list(
        small.stream(ModelRequest(messages=prompt, generation=GenerationConfig(max_tokens=8)))
    )
    assert deltas[0].trimmed == trimmed
    agent = Agent(llm=small, max_steps=1, generation={"max_tokens": 8})
    history = [{"role": m.role, "content": m.text} for m in old]
    events = list(agent.run("What is 12 * 34?", history=history))
    notes = [e for e in events if e.type == "history_trimmed"]
    assert notes and notes[0].exchanges >= 1 and notes[0].context_window == 96


def test_a_reply_without_max_tokens_takes_what_the_window_has_left(small):
    """No max_tokens: the reply gets the default (half this 96-token window) or what the
    prompt leaves, down to a quarter of that, before any exchange is left out."""
    old = [Message(role="user", content="hi"), Message(role="assistant", content="ok")]
    for k in range(1, 60):
        prompt = old + [Message(role="user", content="word " * k)]
        n = small.count_tokens(prompt)
        if 48 < n <= 96 - 12:  # past the default budget, within the floor
            break
    else:
        raise AssertionError("no prompt length between 48 and 84 tokens")
    ids, _, trimmed, budget = small._fit(prompt, 48, least=12)
    assert trimmed is None and budget == 96 - n and len(ids) == n
    deltas = list(small.stream(ModelRequest(messages=prompt)))
    assert not any(d.trimmed for d in deltas)  # nothing left out
    # with max_tokens set, that many are kept for the reply: the old exchange goes
    strict = list(
        small.stream(ModelRequest(messages=prompt, generation=GenerationConfig(max_tokens=48)))
    )
    assert strict[0].trimmed is not None and strict[0].trimmed.exchanges == 1


def test_a_question_that_cannot_fit_is_an_error_naming_the_sizes(small):
    prompt = [
        Message(role="user", content="old " * 10),
        Message(role="assistant", content="ok"),
        Message(role="user", content="word " * 200),
    ]
    with pytest.raises(ContextWindowError) as exc:
        drain(small, prompt, GenerationConfig(max_tokens=8))
    msg = str(exc.value)
    assert "96 tokens" in msg and "8 kept for the reply" in msg and "after leaving out 1" in msg
    assert exc.value.param == "messages"


def test_missing_and_broken_model_directories(tmp_path, small_model_dir):
    # a path that names no model is a configuration error (the CLI's exit code 2)
    with pytest.raises(ConfigError, match="does not exist"):
        TransformersChatModel(str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="config.json is missing"):
        TransformersChatModel(str(tmp_path))
    broken = tmp_path / "broken"
    shutil.copytree(small_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(BackendConnectionError, match="cannot load model"):
        TransformersChatModel(str(broken))
    with pytest.raises(ConfigError, match="unknown options"):
        get_chat_model({"backend": "transformers", "model": str(small_model_dir), "gpu": 1})


def test_a_gguf_q8_folder_loads_like_the_checkpoint_it_came_from(small_model_dir, tmp_path):
    """The bundled model's layout (config.json, model.gguf in Q8_0, tokenizer files): the
    backend's GGUF path gives the same logits as transformers' own ``gguf_file`` loader,
    and close to the float32 checkpoint; a bare .gguf file loads through transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.smol_agent.export import write_gguf

    folder = tmp_path / "q8"
    folder.mkdir()
    write_gguf(small_model_dir, folder / "model.gguf")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(small_model_dir / name, folder / name)
    fast = TransformersChatModel(str(folder), threads=1)
    ref = AutoModelForCausalLM.from_pretrained(folder, gguf_file="model.gguf", dtype=torch.float32)
    ids = torch.randint(
        0, fast.model.config.vocab_size, (1, 24), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        a, b = fast.model(ids).logits, ref(ids).logits
        full = AutoModelForCausalLM.from_pretrained(small_model_dir)(ids).logits
    assert (a - b).abs().max().item() < 1e-5
    assert 0 < (a - full).abs().max().item() < 0.05  # Q8_0: close, not equal
    assert drain(fast, user("hello"), GenerationConfig(max_tokens=4)).text is not None
    # two GGUF files and no config: say which to pick
    (folder / "config.json").unlink()
    shutil.copy(folder / "model.gguf", folder / "other.gguf")
    with pytest.raises(ConfigError, match="2 .gguf files"):
        TransformersChatModel(str(folder))


def test_registry_builds_the_backend_from_config(small_model_dir):
    llm = get_chat_model({"model": str(small_model_dir), "dtype": "float32", "threads": 1})
    assert isinstance(llm, TransformersChatModel) and llm.device == "cpu"
    assert llm.max_context == 96


def test_agent_runs_end_to_end_on_a_local_checkpoint(small_model_dir):
    """The whole loop on a real (random) Qwen2 checkpoint: prompt with the tool list in,
    some text out, a final event, no crash."""
    llm = get_chat_model({"model": str(small_model_dir), "threads": 1, "max_context": 1024})
    agent = Agent(llm=llm, tools=[multiply], generation={"max_tokens": 16})
    events = list(agent.run("What is 12 * 34?"))
    assert isinstance(events[-1], FinalEvent)
    assert events[-1].messages[0].text == "What is 12 * 34?"
    prompt = llm.render(agent.format.build_prompt(events[-1].messages[:1], agent._specs))
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.\n\n# Tools")
    assert '"name": "multiply"' in prompt and prompt.endswith("<|im_start|>assistant\n")


def test_chat_template_with_tools_matches_the_hermes_format(small_model_dir):
    from transformers import AutoTokenizer

    from qwen_agent.formats.hermes import HermesFormat

    tok = AutoTokenizer.from_pretrained(small_model_dir)
    msgs = [{"role": "user", "content": "hi"}]
    text = tok.apply_chat_template(
        msgs, tools=[multiply.spec()], tokenize=False, add_generation_prompt=True
    )
    system = HermesFormat().system_prompt([multiply])
    assert text == (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # tool tags are single tokens that decoding keeps (not special), like Qwen's tokenizer
    ids = tok("<tool_call>\n{}\n</tool_call>", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "<tool_call>\n{}\n</tool_call>"
    assert ids[0] == tok.convert_tokens_to_ids("<tool_call>")
    assert ids[-1] == tok.convert_tokens_to_ids("</tool_call>")


@tool
def get_weather(city: str, unit: str = "C") -> str:
    """Weather in a city."""
    return "sunny"


def test_tool_guard_keeps_a_random_model_on_listed_names_and_keys(small_model_dir):
    """A random model continuing a tool call names a listed tool and a listed key under
    the guard, for several sampling seeds; without the guard it does not."""
    from qwen_agent.formats.hermes import HermesFormat

    guarded = TransformersChatModel(str(small_model_dir), threads=1, max_context=1024)
    free = TransformersChatModel(
        str(small_model_dir), threads=1, max_context=1024, tool_guard=False
    )
    system = HermesFormat().build_prompt([], [multiply, get_weather])
    head = "<tool_call>\n" + '{"name": "'
    names = ('multiply", "arguments": {', 'get_weather", "arguments": {')
    for seed in range(4):
        cfg = GenerationConfig(max_tokens=30, temperature=1.0, seed=seed)
        msgs = [
            *system,
            Message(role="user", content="hi"),
            Message(role="assistant", content=head),
        ]
        out = drain(guarded, msgs, cfg, tools=[multiply, get_weather]).text
        assert out.startswith(names), out
        out = drain(free, msgs, cfg, tools=[multiply, get_weather]).text
        assert not out.startswith(names), out
    key_prefix = head + 'get_weather", "arguments": {"'
    msgs[-1] = Message(role="assistant", content=key_prefix)
    out = drain(guarded, msgs, GenerationConfig(max_tokens=4), tools=[multiply, get_weather]).text
    assert out.startswith(('city"', 'unit"')), out
    # text outside a call is untouched: same output with and without the guard
    cfg = GenerationConfig(max_tokens=12)
    plain = [*system, Message(role="user", content="hi")]
    both = [multiply, get_weather]
    assert drain(guarded, plain, cfg, tools=both).text == drain(free, plain, cfg, tools=both).text


def test_guard_processor_bans_end_of_text_inside_a_call_only(small_model_dir):
    """Inside a guided call the end-of-text token and raw newlines in a string value are
    masked; after the call (and outside one) the model may end."""
    import torch

    from qwen_agent.backends.transformers import _GuardProcessor
    from qwen_agent.formats.guard import ToolGuard
    from qwen_agent.formats.hermes import HermesFormat

    model = TransformersChatModel(str(small_model_dir), threads=1)
    tok, vocab = model.tokenizer, model.vocab()
    guard = ToolGuard.for_constraint(HermesFormat().constraint([ToolSpec.of(get_weather)]))
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    newline = [i for i, piece in enumerate(vocab) if "\n" in piece and '"' not in piece]
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Os'

    def masked(text):
        proc = _GuardProcessor(guard, tok, vocab, 0, "", [eos])
        ids = torch.tensor([tok.encode(text)])
        out = proc(ids, torch.zeros(1, len(vocab)))
        return {i for i in range(len(vocab)) if out[0, i] == float("-inf")}

    inside = masked(call)
    assert eos in inside and set(newline) <= inside
    assert eos not in masked("The weather is fine.")
    assert eos not in masked(call + 'lo"}}\n</tool_call>')


def test_copy_bias_makes_string_arguments_copies_of_the_users_words(small_model_dir):
    """With a large copy bias even a random model writes a string argument that is a span
    of the user's message cut at word ends; with none it does not."""
    from qwen_agent.formats.hermes import HermesFormat

    system = HermesFormat().build_prompt([], [get_weather])
    question = "What is the weather in Santa Cruz today?"
    head = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "'
    msgs = [
        *system,
        Message(role="user", content=question),
        Message(role="assistant", content=head),
    ]
    cfg = GenerationConfig(max_tokens=24)
    copier = TransformersChatModel(
        str(small_model_dir), threads=1, max_context=1024, copy_bias=100.0
    )
    assert copier.copy_bias == 100.0
    value = drain(copier, msgs, cfg, tools=[get_weather]).text.split('"')[0]
    assert value and f" {value} " in f" {question[:-1]} ", value
    plain = TransformersChatModel(str(small_model_dir), threads=1, max_context=1024, copy_bias=0.0)
    other = drain(plain, msgs, cfg, tools=[get_weather]).text.split('"')[0]
    assert not (other.strip() and f" {other} " in f" {question[:-1]} "), other
    assert TransformersChatModel(str(small_model_dir), threads=1).copy_bias == 0.0


def _whole_logprob(model, prompt_ids, option, closers):
    """log P(option, then a closer | prompt) from one plain forward pass, no cache."""
    import torch

    with torch.inference_mode():
        logits = model.model(input_ids=torch.tensor([prompt_ids + option])).logits[0]
    logp = logits.float().log_softmax(-1)
    n = len(prompt_ids)
    total = sum(float(logp[n - 1 + t, tok]) for t, tok in enumerate(option))
    return total + float(logp[n + len(option) - 1, closers].logsumexp(-1))


def test_lookahead_scores_match_plain_forward_passes(small_model_dir):
    """The batched scoring from one cached forward pass gives each option's whole
    log-probability, as a plain forward pass over prompt + option does."""
    import torch

    from qwen_agent.bundled.aids import Lookahead as _Lookahead

    model = TransformersChatModel(str(small_model_dir), threads=1)
    look = _Lookahead(model.model, model.tokenizer, torch)
    prompt = model._encode("<|im_start|>user\nWeather in Santa Cruz?<|im_end|>\n")
    options = [look.encode(t) for t in ["Santa Cruz", "in", "Weather in Santa Cruz", "Cruz"]]
    closers = [i for i, piece in enumerate(model.vocab()) if piece.startswith('"')]
    with torch.inference_mode():
        got = look.score(look.start(torch.tensor([prompt])), options, closers)
    want = [_whole_logprob(model, prompt, o, closers) for o in options]
    assert got == pytest.approx(want, abs=1e-3)
    assert len(set(round(g, 3) for g in got)) == len(got)  # the options do differ


def test_lookahead_writes_the_likeliest_copy_of_the_users_words(small_model_dir):
    """With lookahead a string argument the model starts copying is the span of the user's
    message with the highest whole probability, closed right after it; token by token (no
    lookahead) the same model writes another copy for some of these questions."""
    from qwen_agent.formats.guard import copy_spans
    from qwen_agent.formats.hermes import HermesFormat

    head = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "'
    ahead, stepwise = (
        TransformersChatModel(
            str(small_model_dir), threads=1, max_context=1024, copy_bias=100.0, lookahead=on
        )
        for on in (True, False)
    )
    assert ahead.lookahead and not stepwise.lookahead
    closers = [i for i, piece in enumerate(ahead.vocab()) if piece.startswith('"')]
    differ = 0
    # at most four words: every word start is weighed
    for question in ["Weather in Santa Cruz?", "Rain at Oslo now?", "Is Lima hot today", "Quito?"]:
        msgs = [
            *HermesFormat().build_prompt([], [get_weather]),
            Message(role="user", content=question),
            Message(role="assistant", content=head),
        ]
        got = drain(ahead, msgs, GenerationConfig(max_tokens=24), tools=[get_weather])
        value, quote, _ = got.text.partition('"')
        assert quote, value
        prompt = ahead._encode(ahead.render(msgs))
        scored = {
            t: _whole_logprob(ahead, prompt, ahead._encode(t), closers)
            for _, t in copy_spans(question)
        }
        assert value == max(scored, key=scored.__getitem__), (question, value, scored)
        other = drain(stepwise, msgs, GenerationConfig(max_tokens=24), tools=[get_weather])
        other = other.text.partition('"')[0]
        differ += other != value
    assert differ, "lookahead chose as token-by-token decoding did for every question"
    assert not TransformersChatModel(str(small_model_dir), threads=1).lookahead


def test_lookahead_sums_match_plain_forward_passes(small_model_dir):
    """The batched continuation log-probabilities (rows of different lengths, padded)
    equal one plain forward pass per row."""
    import torch

    from qwen_agent.bundled.aids import Lookahead as _Lookahead

    model = TransformersChatModel(str(small_model_dir), threads=1)
    look = _Lookahead(model.model, model.tokenizer, torch)
    cont = model._encode("Weather in Santa Cruz?<|im_end|>")
    pairs = [
        (model._encode("<|im_start|>system\nHi<|im_end|>\n<|im_start|>user\n"), cont),
        (model._encode("<|im_start|>system\nYou look up the weather.<|im_end|>\n"), cont[:3]),
        (model._encode("<|im_start|>user\n"), cont),
    ]
    with torch.inference_mode():
        got = look.sums(pairs * 4)  # 12 rows: more than one batch
    # _whole_logprob's closer is the continuation's last token
    want = [_whole_logprob(model, c, t[:-1], [t[-1]]) for c, t in pairs]
    assert got == pytest.approx(want * 4, abs=1e-3)
    assert len(set(round(g, 3) for g in got[:3])) == 3


def test_relevance_rule_keeps_the_models_pick_unless_the_question_says_otherwise():
    """The relevance check's rule: the model's pick stands, a clearly more relevant tool
    replaces it, and a call with too little evidence becomes no call."""
    from qwen_agent.bundled.aids import CALL_EVIDENCE, RELEVANT_NATS
    from qwen_agent.bundled.aids import pick as _pick

    # the model's pick (index 0) is neutral; another tool gains little: the pick stands
    assert _pick([-1.0, -3.0], [0.0, RELEVANT_NATS - 0.5]) == 0
    # another tool gains enough to outweigh the model's preference and RELEVANT_NATS
    assert _pick([-1.0, -3.0], [0.0, RELEVANT_NATS + 2.5]) == 1
    # a high gain that does not outweigh the model's preference does not switch
    assert _pick([-1.0, -30.0], [0.0, RELEVANT_NATS + 2.5]) == 0
    # a sure pick the question fits clearly worse with: no call
    assert _pick([0.0, -3.0], [CALL_EVIDENCE - 1, 0.5]) is None
    # an unsure pick the question fits no better with: no call
    assert _pick([CALL_EVIDENCE - 1, -30.0], [0.5, 0.0]) is None
    # ... but a relevant tool is called instead
    assert _pick([0.0, -3.0], [CALL_EVIDENCE - 1, RELEVANT_NATS]) == 1
    # a sure pick the question fits a little worse with stands (one tool listed)
    assert _pick([0.0], [CALL_EVIDENCE + 0.5]) == 0


def test_the_prefix_cache_keeps_replies_the_same_and_skips_what_turns_share():
    """An agent's turns share the system prompt and their history: with the prefix cache
    (the default) the bundled model's replies are token for token those without it, and
    most prompt tokens come from the cache."""
    from qwen_agent.bundled import TINY_AGENT

    def replies(prefix_cache: int) -> tuple[list[str], TransformersChatModel]:
        llm = TransformersChatModel(str(TINY_AGENT), threads=1, prefix_cache=prefix_cache)
        agent = Agent(llm=llm, tools=[multiply])
        out, history = [], []
        for q in ("What is 12 * 34?", "multiply 7 by 8", "and 9 times 9?"):
            result = agent.chat(q, history=history)
            history = result.messages
            out += [m.text + repr(m.tool_calls) for m in history if m.role == "assistant"]
        return out, llm

    plain, _ = replies(0)
    cached, llm = replies(4)
    assert cached == plain
    assert llm.prefixes.hit_tokens > 0.6 * llm.prefixes.prompt_tokens
    assert 0 < len(llm.prefixes) <= 4


def test_prefix_cache_lookup_crop_and_eviction():
    import torch
    from transformers import DynamicCache

    from qwen_agent.backends.kv_prefix import PrefixCache, common_prefix

    def cache_of(n: int) -> DynamicCache:
        c = DynamicCache()
        c.update(torch.arange(n).float().view(1, 1, n, 1), torch.zeros(1, 1, n, 1), 0)
        return c

    assert common_prefix((1, 2, 3), (1, 2, 4)) == 2
    assert common_prefix(tuple(range(600)), tuple(range(600))) == 600
    assert common_prefix(tuple(range(600)), tuple(range(300)) + (-1,)) == 300
    pc = PrefixCache(2, min_tokens=4)
    assert pc.take(list(range(10))) is None
    pc.put(list(range(20)), cache_of(20))
    got = pc.take(list(range(8)) + [99, 98])  # parts after 8 tokens
    assert got.get_seq_length() == 8
    assert got.layers[0].keys.flatten().tolist() == list(range(8))
    whole = pc.take(list(range(20)))  # the same sequence: the model must still see a token
    assert whole.get_seq_length() == 19
    assert pc.take(list(range(20)))  # the stored cache was copied, not cropped in place
    assert pc.take([5, 6, 7, 8, 9]) is None  # a shared middle is no prefix
    pc.put(list(range(30)), cache_of(30))  # extends the first: replaces it
    assert len(pc) == 1
    pc.put([7] * 10, cache_of(10))
    pc.put([8] * 10, cache_of(10))  # the least recently used goes
    assert len(pc) == 2 and pc.take(list(range(12))) is None
    small = PrefixCache(4, min_tokens=4, max_tokens=25)
    small.put([1] * 10, cache_of(10))
    small.put([2] * 10, cache_of(10))
    small.put([3] * 10, cache_of(10))  # 30 tokens: over the budget, the oldest goes
    assert len(small) == 2 and small.take([1] * 10) is None
    small.put([4] * 30, cache_of(30))  # longer than the whole budget: not kept
    assert len(small) == 2
