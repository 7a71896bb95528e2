"""The training script end to end at toy size: data, tokenizer, a few steps, a model
directory the backend loads, a log, and the bundling step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parent.parent


def test_a_toy_training_run_gives_a_loadable_model_a_log_and_a_bundle(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.tiny_agent.train", "--out", str(out)]
    cmd += ["--steps", "4", "--dialogues", "80", "--vocab", "400", "--hidden", "64"]
    cmd += ["--layers", "1", "--heads", "2", "--kv-heads", "1", "--intermediate", "64"]
    cmd += ["--max-len", "256", "--threads", "1", "--save-every", "2", "--batch", "2"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    log = (out / "train.log").read_text()
    assert "step 4/4" in log and "done in" in log
    meta = json.loads((out / "training.json").read_text())
    assert meta["step"] == 4 and meta["args"]["seed"] == "1234"

    from qwen_agent.backends.transformers import TransformersChatModel
    from qwen_agent.llm import GenerationConfig, drain
    from qwen_agent.messages import Message

    model = TransformersChatModel(str(out), threads=1, max_context=1024)
    reply = drain(model, [Message(role="user", content="hi")], GenerationConfig(max_tokens=5))
    assert reply.finish_reason in ("stop", "length")

    dest = tmp_path / "bundle"
    cmd = [sys.executable, "-m", "training.tiny_agent.bundle", str(out), "--dest", str(dest)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    bundled = json.loads((dest / "training.json").read_text())
    assert bundled["steps"] == 4 and len(bundled["legs"]) == 1
    assert "out" not in bundled["legs"][0]["args"]
    assert (dest / "model.safetensors").is_file()
    # a run that did not finish is refused with a clear message
    (out / "training.json").unlink()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "not a finished run" in done.stderr


def test_history_dialogues_are_second_user_turns_with_one_toolset():
    from training.tiny_agent.data import dialogues

    plain = dialogues(300, seed=8)
    assert plain[0].text() == dialogues(300, seed=8, history_rate=0.0)[0].text()
    mixed = dialogues(300, seed=8, history_rate=0.5)
    two = [d for d in mixed if sum(m.role == "user" for m in d.messages) == 2]
    assert 60 < len(two) < 200
    for d in two:
        assert d.kind != "builder" and "have a tool" not in d.text()
        names = [t["name"] for t in d.tools]
        assert len(names) == len(set(names))
        # every call in the conversation names a listed tool
        for m in d.messages:
            for call in m.tool_calls or []:
                assert call.name in names
        last = max(i for i, m in enumerate(d.messages) if m.role == "user")
        assert d.prompt_messages()[-1].text == d.messages[last].text
        want = d.messages[last + 1].tool_calls
        assert d.expected_call == (want[0] if want else None)
    # held-out dialogues stay single questions
    held = dialogues(100, seed=8, split="eval", history_rate=0.5)
    assert all(sum(m.role == "user" for m in d.messages) == 1 for d in held)


def test_word_rate_names_made_up_domains_with_real_words_never_the_held_out_ones():
    import re

    from training.tiny_agent.data import EVAL_PAIRS, EVAL_SUBJECTS, WORDS, Generator, dialogues

    held_out = set()
    for s in EVAL_SUBJECTS + EVAL_PAIRS:
        held_out |= set(s.phrase.split()) | {key for key, _, _ in s.params}
    assert not held_out & set(WORDS)
    # off by default: the data of earlier training legs is unchanged
    assert [d.text() for d in dialogues(200, seed=4)] == [
        d.text() for d in dialogues(200, seed=4, word_rate=0.0)
    ]
    words = set(WORDS)

    def tool(d, name):
        return next(t for t in d.tools if t["name"] == name)

    def named_with_words(spec):
        parts = re.findall(r"[A-Z]?[a-z]+", spec["name"])
        return any(p.lower() in words for p in parts)

    mixed = dialogues(400, seed=4, word_rate=0.5)
    lookups = [d for d in mixed if d.kind == "lookup"]
    called = [d for d in lookups if named_with_words(tool(d, d.expected_call.name))]
    assert len(called) > len(lookups) // 8
    # made-up distractors too: a listed tool that is not called
    assert any(
        named_with_words(t) for d in lookups for t in d.tools if t["name"] != d.expected_call.name
    )
    for d in lookups:  # the call's keys and its values come from the prompt
        call = d.expected_call
        assert set(call.arguments) <= set(tool(d, call.name)["parameters"]["properties"])
        for value in call.arguments.values():
            assert str(value) in d.messages[-4].text
    # held-out data never has them
    assert Generator(4, split="eval", word_rate=0.5).word_rate == 0.0
    assert [d.text() for d in dialogues(100, seed=4, split="eval", word_rate=0.5)] == [
        d.text() for d in dialogues(100, seed=4, split="eval")
    ]
