"""Synthetic scenes and their captions: one coloured shape on a plain background.

A scene is a shape (circle, square, triangle, diamond, star), a colour, a background
colour, a size (small, medium, large) and a position on a 3 x 3 grid. ``caption()`` writes
it the many ways people write it ("a small red circle at the top left on a blue
background", "red circle, top-left, blue bg", "Draw a big yellow square in the middle");
what a caption leaves out takes its default (medium, centre, a white background, or black
for a white shape), so a caption always determines the picture up to a small jitter.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

SHAPES = ("circle", "square", "triangle", "diamond", "star")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (245, 220, 30),
    "orange": (250, 140, 20),
    "purple": (140, 40, 180),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
SIZES = {"small": 0.28, "medium": 0.45, "large": 0.68}  # the shape's width / the image's
POSITIONS = {  # (column, row) on a 3 x 3 grid
    "top left": (0, 0),
    "top": (1, 0),
    "top right": (2, 0),
    "left": (0, 1),
    "center": (1, 1),
    "right": (2, 1),
    "bottom left": (0, 2),
    "bottom": (1, 2),
    "bottom right": (2, 2),
}

_SIZE_WORDS = {
    "small": ["small", "little", "tiny", "small"],
    "medium": ["medium", "medium-sized", "mid-sized"],
    "large": ["large", "big", "huge", "large"],
}
_SHAPE_WORDS = {
    "circle": ["circle", "circle", "disc", "round circle", "ball"],
    "square": ["square", "square", "box"],
    "triangle": ["triangle", "triangle"],
    "diamond": ["diamond", "diamond", "rhombus"],
    "star": ["star", "star"],
}
_POS_WORDS = {
    "top left": ["top left", "top-left", "upper left", "top left corner"],
    "top": ["top", "top middle", "top center", "upper middle"],
    "top right": ["top right", "top-right", "upper right", "top right corner"],
    "left": ["left", "middle left", "left side", "center left"],
    "center": ["center", "centre", "middle"],
    "right": ["right", "middle right", "right side", "center right"],
    "bottom left": ["bottom left", "bottom-left", "lower left", "bottom left corner"],
    "bottom": ["bottom", "bottom middle", "bottom center", "lower middle"],
    "bottom right": ["bottom right", "bottom-right", "lower right", "bottom right corner"],
}
_AT = ["at the {p}", "in the {p}", "{p}", "on the {p}", "positioned at the {p}"]
_BG = [
    "on a {c} background",
    "on {c}",
    "against a {c} background",
    "with a {c} background",
    "{c} background",
    "on a plain {c} background",
    "over {c}",
]
_LEAD = [
    "",
    "",
    "",
    "a ",
    "a ",
    "an image of a ",
    "a picture of a ",
    "draw a ",
    "Draw a ",
    "one ",
    "paint a ",
    "make a ",
    "show a ",
    "generate a ",
    "create an image of a ",
]


@dataclass(frozen=True)
class Scene:
    shape: str
    color: str
    background: str
    size: str
    position: str
    jitter: tuple[float, float, float] = (0.0, 0.0, 0.0)  # dx, dy (fractions), rotation

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLORS[self.color]

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        return COLORS[self.background]


def default_background(color: str) -> str:
    return "black" if color == "white" else "white"


def random_scene(rng: random.Random) -> tuple[Scene, str]:
    """A scene and a caption of it; what the caption leaves out is at its default."""
    shape = rng.choice(SHAPES)
    color = rng.choice(list(COLORS))
    say_size, say_pos, say_bg = rng.random() < 0.75, rng.random() < 0.7, rng.random() < 0.75
    size = rng.choice(list(SIZES)) if say_size else "medium"
    position = rng.choice(list(POSITIONS)) if say_pos else "center"
    background = (
        rng.choice([c for c in COLORS if c != color]) if say_bg else default_background(color)
    )
    jitter = (rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04), rng.uniform(-1, 1))
    scene = Scene(shape, color, background, size, position, jitter)
    return scene, caption(scene, rng, say_size=say_size, say_pos=say_pos, say_bg=say_bg)


def caption(
    scene: Scene, rng: random.Random, *, say_size: bool, say_pos: bool, say_bg: bool
) -> str:
    size = rng.choice(_SIZE_WORDS[scene.size]) + " " if say_size else ""
    noun = f"{size}{scene.color} {rng.choice(_SHAPE_WORDS[scene.shape])}"
    parts = []
    if say_pos:
        parts.append(rng.choice(_AT).format(p=rng.choice(_POS_WORDS[scene.position])))
    if say_bg:
        parts.append(rng.choice(_BG).format(c=scene.background))
    rng.shuffle(parts)
    style = rng.random()
    if style < 0.2 and parts:  # terse: "red circle, top left, blue background"
        text = ", ".join([noun, *(p.replace("at the ", "").replace("on a ", "") for p in parts)])
    else:
        text = " ".join([rng.choice(_LEAD) + noun, *parts])
    text = re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)  # "an orange", "an image"
    if rng.random() < 0.15:
        text = text.lower()
    return text.strip()


def render(scene: Scene, size: int = 64, supersample: int = 4) -> Image.Image:  # noqa: F821
    """The scene as an RGB PIL image, drawn large and downsampled for smooth edges."""
    from PIL import Image, ImageDraw

    big = size * supersample
    img = Image.new("RGB", (big, big), scene.background_rgb)
    draw = ImageDraw.Draw(img)
    width = SIZES[scene.size] * big
    col, row = POSITIONS[scene.position]
    margin = 0.04 * big
    span = big - 2 * margin - width  # centres range over the free space
    dx, dy, rot = scene.jitter
    cx = margin + width / 2 + span * col / 2 + dx * big
    cy = margin + width / 2 + span * row / 2 + dy * big
    cx = min(max(cx, width / 2), big - width / 2)
    cy = min(max(cy, width / 2), big - width / 2)
    r = width / 2
    if scene.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=scene.rgb)
    elif scene.shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=scene.rgb)
    elif scene.shape == "triangle":  # pointing up, its box the shape's width square
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=scene.rgb)
    elif scene.shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=scene.rgb)
    elif scene.shape == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5 + rot * 0.0
            rad = r if k % 2 == 0 else r * 0.45
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a) + r * 0.1))
        draw.polygon(pts, fill=scene.rgb)
    else:
        raise ValueError(f"unknown shape {scene.shape!r}")
    return img.resize((size, size), Image.Resampling.LANCZOS)


def vocabulary() -> list[str]:
    """Every word the captions use, for the tokenizer."""
    words: set[str] = set()
    texts = [*COLORS, *SHAPES, *SIZES, "an", "the", "a", "of", "image", "picture", "draw"]
    for group in (_SIZE_WORDS, _SHAPE_WORDS, _POS_WORDS):
        for values in group.values():
            texts.extend(values)
    texts.extend(_AT + _BG + _LEAD)
    texts += ["bg", "with", "one", "and", "in", "on", "at", "over", "shape", "picture"]
    for t in texts:
        for w in re.findall(r"[a-z]+", t.replace("{p}", "").replace("{c}", "").lower()):
            words.add(w)
    return sorted(words)
