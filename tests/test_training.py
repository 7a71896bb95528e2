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


def test_a_toy_diffusion_run_exports_and_a_second_run_starts_from_the_export(tmp_path):
    """training/tiny_diffusion at toy size: the autoencoder and UNet legs, an exported
    pipeline that diffusers loads, then ``--init`` from that export with the outline weight,
    whose training.json keeps the first run's record."""
    pytest.importorskip("diffusers")
    first, export = tmp_path / "run", tmp_path / "pipe"
    base = [sys.executable, "-m", "training.tiny_diffusion.train", "--threads", "1"]
    small = ["--vae-steps", "2", "--vae-batch", "2", "--unet-steps", "3", "--batch", "2"]
    small += ["--bank", "8", "--save-every", "1", "--log-every", "1"]
    cmd = [*base, "--out", str(first), *small, "--export", str(export)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unet step 3/3" in (first / "train.log").read_text()
    info = json.loads((export / "training.json").read_text())
    assert [leg["steps"] for leg in info["legs"]] == [2, 3] and "started_from" not in info

    second = tmp_path / "run2"
    cmd = [*base, "--out", str(second), *small, "--init", str(export), "--edge-weight", "4"]
    cmd += ["--export", str(tmp_path / "pipe2")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    log = (second / "train.log").read_text()
    assert "initialised from" in log and "vae step" not in log  # the autoencoder came along
    info2 = json.loads((tmp_path / "pipe2" / "training.json").read_text())
    assert info2["edge_weight"] == 4.0 and info2["legs"][0] == {"leg": "vae", "from": str(export)}
    assert info2["started_from"]["training"]["legs"] == info["legs"]

    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(tmp_path / "pipe2")
    assert pipe.vae.config.scaling_factor == info["scaling_factor"]


def test_the_outline_weight_is_highest_on_the_shape_and_flat_on_an_empty_picture():
    import torch

    from training.tiny_diffusion.train import edge_weights

    lat = torch.zeros(2, 4, 16, 16)
    lat[0, :, 6:10, 6:10] = 1.0  # a square in the middle of the first picture
    w = edge_weights(lat, 4.0)
    assert w.shape == (2, 1, 16, 16)
    assert w[0, 0, 6, 6] == 5.0 and w[0, 0, 0, 0] == 1.0 and w[0, 0, 15, 15] == 1.0
    assert torch.all(w[1] == 1.0)  # nothing drawn: no position weighs more than another


def test_a_text_encoder_with_fewer_positions_keeps_them_and_repeats_its_last():
    import torch

    from training.tiny_diffusion import model as M
    from training.tiny_diffusion.train import _longer_positions

    state = M.make_text_encoder(64).state_dict()
    key = next(k for k in state if k.endswith("embeddings.position_embedding.weight"))
    short = {**state, key: torch.randn(24, M.TEXT_WIDTH)}
    longer = _longer_positions(short, M.MAX_TOKENS)[key]
    assert longer.shape == (M.MAX_TOKENS, M.TEXT_WIDTH) and M.MAX_TOKENS > 24
    assert torch.equal(longer[:24], short[key]) and torch.equal(longer[-1], short[key][23])
    M.make_text_encoder(64).load_state_dict(_longer_positions(short, M.MAX_TOKENS))
    assert _longer_positions(state, M.MAX_TOKENS)[key] is state[key]  # already long enough


def test_filler_adds_made_up_words_at_the_ends_and_before_phrases_and_keeps_every_word():
    import random

    from training.tiny_diffusion.scenes import vocabulary
    from training.tiny_diffusion.train import with_filler

    caption = "a small red circle at the top left on a blue background"
    known = set(vocabulary())
    padded_some = 0
    for seed in range(50):
        padded = with_filler(caption, random.Random(seed)).split()
        kept = [w for w in padded if w in known]
        assert kept == caption.split()  # nothing lost or reordered
        added = [w.rstrip(",!?") for w in padded if w not in known]
        assert len(added) <= 4 and all(w.isalpha() and w.islower() for w in added)
        # never inside a phrase: "top left" and "blue background" stay together
        text = " ".join(padded)
        assert "top left" in text and "blue background" in text and "red circle" in text
        padded_some += bool(added)
    assert padded_some >= 45


@pytest.mark.parametrize(
    "options, message",
    [
        (["--init", "."], "not an exported pipeline directory"),
        (["--filler", "1.5"], "a share of the captions"),
        (["--edge-weight", "-1"], "a weight of 0 or more"),
        (["--edge-weight", "4", "--prediction", "epsilon"], "for --prediction sample"),
    ],
)
def test_the_diffusion_trainer_refuses_bad_options_before_it_starts(tmp_path, options, message):
    cmd = [sys.executable, "-m", "training.tiny_diffusion.train", "--out", str(tmp_path / "r")]
    done = subprocess.run([*cmd, *options], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr
    assert not (tmp_path / "r").exists()  # nothing written


def test_no_tool_requests_are_mostly_near_misses():
    """A ``none`` request most often carries a kind of value a listed tool takes (held-out
    false positives rose while the loss fell when such requests were left to chance)."""
    import random

    from training.smol_agent.data import Generator, unlisted_family
    from training.smol_agent.families import FAMILIES

    gen = Generator(seed=7)
    rng = random.Random(3)
    near = by_chance = total = 0
    for _ in range(400):
        tools = [t for t in gen.toolset() if t.family is not None]
        if not tools:
            continue
        slots = {p.slot for t in tools for p in t.family.params}
        listed = {t.family.gist for t in tools}
        picked = unlisted_family(tools, rng)
        assert picked.gist not in listed
        total += 1
        near += any(p.slot in slots for p in picked.params)
        other = rng.choice([f for f in FAMILIES if f.gist not in listed])
        by_chance += any(p.slot in slots for p in other.params)
    assert total > 300
    assert near / total > 0.5 and near > by_chance * 2, (near, by_chance, total)
