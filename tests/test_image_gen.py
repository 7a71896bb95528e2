"""The image_gen tool: any diffusers pipeline directory, and the bundled shapes model.

The bundled model is judged from its pixels (training/tiny_diffusion/judge.py): the named
colour must be the shape's, the background the named one, and the shape must fill its
bounding box the way a disc, a square or a triangle does.
"""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from qwen_agent import Agent  # noqa: E402
from qwen_agent.errors import ConfigError, ToolCallError  # noqa: E402
from qwen_agent.events import ToolResultEvent  # noqa: E402
from qwen_agent.messages import ImageItem  # noqa: E402
from qwen_agent.tools.image_gen import ImageGen, bundled_pipeline_path  # noqa: E402
from training.tiny_diffusion.judge import read  # noqa: E402

# (prompt, colour, background, shape): what the issue names, worded as people write it
BUNDLED_PROMPTS = [
    ("a small red circle at the top left on a blue background", "red", "blue", "circle"),
    ("a green triangle", "green", "white", "triangle"),
    ("a large yellow square on a black background", "yellow", "black", "square"),
    ("a blue circle in the middle on a white background", "blue", "white", "circle"),
    ("a purple triangle at the bottom right on yellow", "purple", "yellow", "triangle"),
    ("an orange square at the top right on a green background", "orange", "green", "square"),
    ("a big white circle on a red background", "white", "red", "circle"),
    ("a black triangle on an orange background", "black", "orange", "triangle"),
    ("a small green square at the bottom left on a purple background", "green", "purple", "square"),
    ("a large orange circle on a black background", "orange", "black", "circle"),
    ("a red triangle at the top on a white background", "red", "white", "triangle"),
    ("a blue square on a yellow background", "blue", "yellow", "square"),
]


@pytest.fixture(scope="module")
def random_pipeline(tmp_path_factory):
    """A tiny Stable Diffusion pipeline with random weights, built from config and saved
    the way any pipeline directory is."""
    import torch
    from diffusers import StableDiffusionPipeline

    from training.tiny_diffusion import model as M

    torch.manual_seed(0)
    tok = M.make_tokenizer()
    pipe = StableDiffusionPipeline(
        vae=M.make_vae(),
        text_encoder=M.make_text_encoder(len(tok)),
        tokenizer=tok,
        unet=M.make_unet(),
        scheduler=M.make_sample_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    out = tmp_path_factory.mktemp("random-pipe")
    pipe.save_pretrained(out)
    return out


def test_random_pipeline_draws_a_png_into_the_sessions_folder(random_pipeline, tmp_path):
    gen = ImageGen(model=random_pipeline, output_dir=tmp_path / "out")
    items = gen.call(prompt="a red circle", steps=2, seed=7)
    text, image = items
    assert isinstance(image, ImageItem)
    with Image.open(image.image) as img:
        assert img.format == "PNG" and img.size == (64, 64)  # the model's native size
    assert "seed 7" in text.text and image.image.rsplit("/", 1)[1] in text.text
    assert str(tmp_path) not in text.text  # the model sees the file's name, not a host path
    assert [p.name for p in (tmp_path / "out").iterdir()] == [image.image.rsplit("/", 1)[1]]


def test_same_seed_same_picture_and_sizes_round_to_the_model(random_pipeline, tmp_path):
    gen = ImageGen(model=random_pipeline, output_dir=tmp_path)
    a, used = gen.generate("a blue square", steps=2, seed=3)
    b, _ = gen.generate("a blue square", steps=2, seed=3)
    c, _ = gen.generate("a blue square", steps=2, seed=4)
    assert a != b and a.read_bytes() == b.read_bytes() != c.read_bytes()
    # no generation_defaults.json here: Stable Diffusion's defaults by class
    assert used["steps"] == 2 and used["guidance_scale"] == 7.5
    wide, used = gen.generate("a blue square", steps=1, seed=1.0, width=98, height=34.0)
    with Image.open(wide) as img:  # multiples of 8, whatever the autoencoder's factor
        assert img.size == (used["width"], used["height"]) == (96, 32)
    assert used["seed"] == 1 and isinstance(used["seed"], int)


def test_per_model_defaults_come_from_the_model_folder(random_pipeline, tmp_path):
    (random_pipeline / "generation_defaults.json").write_text('{"steps": 3, "guidance_scale": 2}')
    try:
        _, used = ImageGen(model=random_pipeline, output_dir=tmp_path).generate("a star", seed=1)
        assert (used["steps"], used["guidance_scale"]) == (3, 2.0)
        _, used = ImageGen(
            model=random_pipeline, output_dir=tmp_path, defaults={"steps": 1}
        ).generate("a star", seed=1)
        assert used["steps"] == 1
    finally:
        (random_pipeline / "generation_defaults.json").unlink()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"prompt": "  "}, "non-empty prompt"),
        ({"prompt": "x", "steps": 0}, "steps must be between"),
        ({"prompt": "x", "steps": 10_000}, "steps must be between"),
        ({"prompt": "x", "width": 40_000, "height": 40_000}, "width must be an integer from 8"),
        ({"prompt": "x", "width": 64, "height": 65_536}, "height must be an integer from 8"),
        ({"prompt": "x", "width": 256, "height": 8}, "too narrow"),
        ({"prompt": "x", "width": 2}, "width must be an integer"),
        ({"prompt": "x", "width": 64.5}, "width must be an integer"),
        ({"prompt": "x", "seed": 1e300}, "seed must be an integer"),
        ({"prompt": "x", "seed": -1}, "seed must be an integer"),
        ({"prompt": "x", "guidance_scale": -1}, "guidance_scale must be between"),
    ],
)
def test_bad_arguments_are_clear_errors(random_pipeline, tmp_path, options, message):
    gen = ImageGen(model=random_pipeline, output_dir=tmp_path)
    with pytest.raises(ToolCallError, match=message):
        gen.call(**options)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_is_not_a_pipeline_is_refused(random_pipeline, tmp_path):
    with pytest.raises(ConfigError, match="not a diffusers pipeline directory"):
        ImageGen(model=tmp_path)
    # client-made session ids become a hashed folder name, never a path
    odd = ImageGen(model=random_pipeline, session_id="../../etc")
    assert odd.output_dir.parent.name == "images" and odd.output_dir.name.startswith("session-")
    served = ImageGen(model=random_pipeline, session_id="helper:conversation-42")
    assert ":" not in served.output_dir.name and served.output_dir != odd.output_dir


def test_concurrent_calls_share_one_pipeline(random_pipeline, tmp_path):
    gen = ImageGen(model=random_pipeline, output_dir=tmp_path)
    out, errors = [], []

    def draw(seed):
        try:
            out.append(gen.generate("a green star", steps=2, seed=seed)[0])
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=draw, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(set(out)) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- how many pictures are kept -------------------------------------------------------------
def _picture(folder, n, size=100, age_hours=0.0):
    """A file named as image_gen names its pictures, ``n`` seconds into the day, written
    ``age_hours`` ago (plus ``n`` seconds: a higher ``n`` is newer)."""
    import os
    import time

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"image-20250101-{n:06d}-{n:08x}.png"
    path.write_bytes(b"x" * size)
    when = time.time() - age_hours * 3600 - 1000 + n
    os.utime(path, (when, when))
    return path


def test_past_the_quota_the_oldest_pictures_go_first(tmp_path):
    from qwen_agent.tools._files import Quota, prune
    from qwen_agent.tools.image_gen import IMAGE_NAME

    root = tmp_path / "images"
    mine = [_picture(root / "mine", n) for n in range(10, 16)]
    theirs = [_picture(root / "theirs", n) for n in range(1, 5)]  # older than all of mine
    (root / "mine" / "notes.png").write_bytes(b"x" * 10_000)  # not a name image_gen gives
    (root / "mine" / "image-20250101-000000-0000000a.png.bak").write_bytes(b"x")
    quota = Quota(max_files=4, max_bytes=None, max_total_files=None, max_total_bytes=None)
    deleted = prune(root / "mine", quota, IMAGE_NAME, root=root, keep=mine[-1])
    assert deleted == mine[:2]  # the folder's limit: its two oldest
    assert [p.exists() for p in mine] == [False, False, True, True, True, True]
    assert all(p.exists() for p in theirs)
    # bytes count too; the total limits reach the other sessions' folders, oldest first
    quota = Quota(max_bytes=350, max_total_files=5, max_total_bytes=None)
    deleted = prune(root / "mine", quota, IMAGE_NAME, root=root, keep=mine[-1])
    assert mine[2] in deleted and set(theirs[:2]) <= set(deleted)
    left = sorted(p.name for p in root.rglob("image-*.png"))
    assert left == sorted(p.name for p in [*theirs[2:], *mine[3:]])
    assert (root / "mine" / "notes.png").exists() and len(list(root.rglob("*.bak"))) == 1
    # the picture just written stays, even alone over the limit
    big = _picture(root / "mine", 99, size=10_000)
    prune(root / "mine", Quota(max_bytes=1000), IMAGE_NAME, root=root, keep=big)
    assert big.exists() and [p.name for p in (root / "mine").glob("image-*.png")] == [big.name]


def test_old_pictures_and_empty_session_folders_are_swept(tmp_path):
    from qwen_agent.tools._files import Quota, prune
    from qwen_agent.tools.image_gen import IMAGE_NAME

    root = tmp_path / "images"
    fresh = _picture(root / "now", 1)
    stale = [_picture(root / "now", 2, age_hours=30), _picture(root / "old", 3, age_hours=25)]
    kept = _picture(root / "recent", 4, age_hours=20)
    crashed = root / "gone" / f".{_picture(root / 'gone', 5, age_hours=48).name}.tmp"
    (root / "gone" / crashed.name[1:-4]).rename(crashed)  # a write that died midway
    (root / "empty").mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    _picture(tmp_path / "outside", 6, age_hours=100)
    deleted = prune(root / "now", Quota(max_age_hours=24), IMAGE_NAME, root=root, keep=fresh)
    assert sorted(deleted) == sorted([*stale, crashed])
    assert fresh.exists() and kept.exists()
    assert sorted(p.name for p in root.iterdir()) == ["link", "now", "recent"]
    assert len(list((tmp_path / "outside").iterdir())) == 1  # never through a symlink


def test_a_quota_is_checked_and_read_from_a_table():
    from qwen_agent.tools._files import Quota

    assert Quota.of(None) == Quota() and Quota().max_age_hours == 168
    q = Quota.of({"max_age_hours": 1.5, "max_files": 0})
    assert (q.max_age_hours, q.max_files, q.max_bytes) == (1.5, None, Quota().max_bytes)
    for bad in ({"max_files": -1}, {"max_files": 2.5}, {"max_age_hours": float("nan")}, {"x": 1}):
        with pytest.raises(ConfigError, match="quota"):
            Quota.of(bad)
    with pytest.raises(ConfigError, match="max_bytes"):
        Quota(max_bytes="1GB")


def test_generating_past_the_quota_keeps_the_newest(random_pipeline, tmp_path, monkeypatch):
    """The default layout: <data dir>/images/<session>; a served run without a
    conversation id is a session of its own, so old sessions' folders must go too."""
    monkeypatch.setenv("QWEN_AGENT_DATA_DIR", str(tmp_path))
    old = _picture(tmp_path / "images" / "session-abandoned", 1, age_hours=24 * 8)
    first, _ = ImageGen(model=random_pipeline, session_id="s1").generate("a", steps=1, seed=0)
    assert first.parent == tmp_path / "images" / "s1"
    assert not old.parent.exists()  # older than a week (the default age limit)
    gen = ImageGen(model=random_pipeline, session_id="s1", quota={"max_files": 2})
    paths = [first, *(gen.generate("a red circle", steps=1, seed=i)[0] for i in range(2))]
    assert [p.exists() for p in paths] == [False, True, True]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["s1"]


# -- the bundled model ---------------------------------------------------------------------
def test_bundled_model_is_a_small_standard_pipeline():
    import json

    path = bundled_pipeline_path()
    index = json.loads((path / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert size < 20 * 2**20
    info = json.loads((path / "training.json").read_text())
    assert info["legs"] and info["native_size"] == 64


@pytest.fixture(scope="module")
def bundled_readings(tmp_path_factory):
    """The bundled model's pictures of the fixed prompts, read back from their pixels."""
    gen = ImageGen(output_dir=tmp_path_factory.mktemp("bundled"))
    out = []
    for i, (prompt, color, background, shape) in enumerate(BUNDLED_PROMPTS):
        path, _ = gen.generate(prompt, seed=i)
        with Image.open(path) as img:
            out.append((prompt, (color, background, shape), read(img)))
    return out


def test_bundled_model_draws_the_colours_asked(bundled_readings):
    wrong = [
        f"{prompt!r}: got {r}"
        for prompt, (color, background, _), r in bundled_readings
        if (r.color, r.background) != (color, background)
    ]
    assert len(wrong) <= 1, "\n".join(wrong)


def test_bundled_model_draws_the_shapes_asked(bundled_readings):
    wrong = [
        f"{prompt!r}: got {r}"
        for prompt, want, r in bundled_readings
        if (r.color, r.background, r.shape) != want
    ]
    assert len(wrong) <= 1, "\n".join(wrong)


# wordy requests, past the 24 text positions the earlier models read (the first shipped one
# and run3's export each got 1 of these 4 right): (seed, prompt, colour, background, shape)
WORDY_PROMPTS = [
    (0, "Could you please draw me a picture of a red circle on a blue background?", "red",
     "blue", "circle"),
    (1, "Hello! For my presentation I need a green triangle, and please make the background "
     "white.", "green", "white", "triangle"),
    (3, "My daughter wants a picture of a purple square on a yellow background, can you do it?",
     "purple", "yellow", "square"),
    (9, "could u make me a green circle at the top on a white background thanks a lot", "green",
     "white", "circle"),
]  # fmt: skip


def test_bundled_model_reads_past_the_padding_of_wordy_requests(tmp_path):
    gen = ImageGen(output_dir=tmp_path)
    wrong = []
    for seed, prompt, *want in WORDY_PROMPTS:
        path, _ = gen.generate(prompt, seed=seed)
        with Image.open(path) as img:
            r = read(img)
        if [r.color, r.background, r.shape] != want:
            wrong.append(f"{prompt!r}: got {r}")
    assert len(wrong) <= 1, "\n".join(wrong)


def test_draw_a_green_triangle_through_the_bundled_agent(tmp_path):
    """The default bundled language model calls image_gen with the request's words as the
    prompt, and the agent gets a PNG back (the pictures themselves are judged in the test
    above)."""
    agent = Agent(tools=[ImageGen(output_dir=tmp_path)])
    events = list(agent.run("Draw a green triangle"))
    calls = [e.call for e in events if e.type == "tool_call"]
    assert calls and "green triangle" in calls[0].arguments.get("prompt", ""), calls
    results = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert results and results[0].name == "image_gen" and not results[0].is_error
    images = [i for i in results[0].content if isinstance(i, ImageItem)]
    assert len(images) == 1
    with Image.open(images[0].image) as img:
        assert img.format == "PNG" and img.size == (64, 64)
    assert images[0].image.startswith(str(tmp_path))


def test_a_run_past_the_tools_timeout_stops_and_frees_the_pipeline(random_pipeline, tmp_path):
    from qwen_agent.errors import ToolError

    slow = ImageGen(model=random_pipeline, output_dir=tmp_path, timeout=1e-6)
    with pytest.raises(ToolError, match="stopped after"):
        slow.generate("a red circle", steps=50, seed=1)
    assert list(tmp_path.iterdir()) == []
    path, _ = ImageGen(model=random_pipeline, output_dir=tmp_path).generate("a", steps=1, seed=1)
    assert path.is_file()
