"""Seconds per image, and how often the picture is what was asked, for a diffusers model.

    python benchmarks/image_gen.py                       # the bundled qwen-tiny-shapes
    python benchmarks/image_gen.py --model DIR --images 5        # timing only
    python benchmarks/image_gen.py --model /work/diffusion/final8000 --judge  # a new run

Prints the load time, then the median and p90 seconds per image at the model's native size
(goal for the bundled model on a laptop CPU: under 1 s). For the bundled model it also
reads every picture back (training/tiny_diffusion/judge.py) and reports, for two prompt
sets, how often the shape's colour, the background, the shape and (where the prompt says
one) the position are right:

- ``generated``: captions drawn by the training generator with a seed it never trained on
  (the in-distribution figure);
- ``held-out``: prompts written apart from the generator, in wording it never uses;
- ``long``: long requests as people write them, past the generator's usual length.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# (prompt, colour, background, shape, position or None), in words the generator never writes
HELD_OUT = [
    ("Please draw me a blue triangle.", "blue", "white", "triangle", None),
    ("I'd like a red square on a yellow backdrop", "red", "yellow", "square", None),
    ("can you make a green circle, with the background purple", "green", "purple", "circle", None),
    (
        "A yellow square sitting in the top left corner, black background",
        "yellow",
        "black",
        "square",
        "top left",
    ),
    (
        "an orange circle near the bottom right, against blue",
        "orange",
        "blue",
        "circle",
        "bottom right",
    ),
    ("Give me a purple triangle on a white background please", "purple", "white", "triangle", None),
    ("white square, red backdrop", "white", "red", "square", None),
    (
        "a black circle in the upper right on an orange background",
        "black",
        "orange",
        "circle",
        "top right",
    ),
    (
        "Sketch a small blue square at the bottom left over yellow",
        "blue",
        "yellow",
        "square",
        "bottom left",
    ),
    ("I want a huge green triangle on a black background", "green", "black", "triangle", None),
    ("red circle in the centre of a blue picture", "red", "blue", "circle", "center"),
    ("yellow triangle on purple, top right", "yellow", "purple", "triangle", "top right"),
    (
        "a tiny orange square on a green background, top left",
        "orange",
        "green",
        "square",
        "top left",
    ),
    ("make me a picture of a purple circle on yellow", "purple", "yellow", "circle", None),
    (
        "a blue triangle at the lower left of a white image",
        "blue",
        "white",
        "triangle",
        "bottom left",
    ),
    ("render a black square on a white background", "black", "white", "square", None),
    ("Could you paint a green star on an orange background?", "green", "orange", "star", None),
    ("a red diamond shape against a black backdrop", "red", "black", "diamond", None),
    ("big white triangle on blue", "white", "blue", "triangle", None),
    ("one small yellow circle at the very top, on red", "yellow", "red", "circle", "top"),
    (
        "an orange triangle on a purple background in the middle",
        "orange",
        "purple",
        "triangle",
        "center",
    ),
    (
        "a green square, bottom right corner, blue background",
        "green",
        "blue",
        "square",
        "bottom right",
    ),
    ("draw purple circle please", "purple", "white", "circle", None),
    ("a blue circle on black in the left side of the picture", "blue", "black", "circle", "left"),
]

# Long requests as people write them (more than the generator's 24 tokens, many words it never
# uses): what a model that reads only the first words of a prompt gets wrong
LONG = [
    (
        "Could you please draw me a picture of a red circle on a blue background?",
        "red",
        "blue",
        "circle",
        None,
    ),
    (
        "Hello! For my presentation I need a green triangle, and please make the background white.",
        "green",
        "white",
        "triangle",
        None,
    ),
    (
        "Would you be so kind as to paint an orange circle at the bottom left, with a purple "
        "background?",
        "orange",
        "purple",
        "circle",
        "bottom left",
    ),
    (
        "My daughter wants a picture of a purple square on a yellow background, can you do it?",
        "purple",
        "yellow",
        "square",
        None,
    ),
    (
        "Please generate, if you can, a small white triangle near the top left on a red background",
        "white",
        "red",
        "triangle",
        "top left",
    ),
    (
        "Make an illustration showing one blue circle right in the middle of a black background",
        "blue",
        "black",
        "circle",
        "center",
    ),
    (
        "I need a simple icon: a black square at the top right, on an orange background, "
        "nothing else",
        "black",
        "orange",
        "square",
        "top right",
    ),
    (
        "Can you create a picture with a yellow triangle in the lower right corner over a green "
        "background?",
        "yellow",
        "green",
        "triangle",
        "bottom right",
    ),
    (
        "Draw, please, a red square and make the whole background of the image purple",
        "red",
        "purple",
        "square",
        None,
    ),
    (
        "could u make me a green circle at the top on a white background thanks a lot",
        "green",
        "white",
        "circle",
        "top",
    ),
    (
        "For a game I am making I need a blue triangle on a yellow background at the bottom",
        "blue",
        "yellow",
        "triangle",
        "bottom",
    ),
    (
        "Hi there, I'd really love a picture of a white square sitting on a black background",
        "white",
        "black",
        "square",
        None,
    ),
]


def generated_prompts(n: int, seed: int) -> list[tuple[str, str, str, str, str | None]]:
    from training.tiny_diffusion.scenes import random_scene

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        scene, text = random_scene(rng)
        pos = None if scene.position == "center" or scene.size == "large" else scene.position
        out.append((text, scene.color, scene.background, scene.shape, pos))
    return out


def judge(gen, prompts, label: str) -> None:
    from PIL import Image

    from training.tiny_diffusion.judge import read
    from training.tiny_diffusion.scenes import POSITIONS

    hits = {"colour": 0, "background": 0, "shape": 0, "all three": 0}
    placed = placed_right = 0
    for i, (prompt, color, bg, shape, pos) in enumerate(prompts):
        path, _ = gen.generate(prompt, seed=i)
        with Image.open(path) as img:
            r = read(img)
        ok = (r.color == color, r.background == bg, r.shape == shape)
        for key, good in zip(("colour", "background", "shape"), ok, strict=True):
            hits[key] += good
        hits["all three"] += all(ok)
        if pos is not None:
            placed += 1
            placed_right += r.column_row() == POSITIONS[pos]
    n = len(prompts)
    cells = "  ".join(f"{k} {100 * v / n:5.1f}%" for k, v in hits.items())
    where = f"  position {100 * placed_right / placed:5.1f}% (of {placed})" if placed else ""
    print(f"{label:<10} n={n:<4} {cells}{where}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="pipeline directory (default: the bundled model)")
    p.add_argument("--images", type=int, default=20, help="images for the timing")
    p.add_argument("--generated", type=int, default=100, help="generator prompts to judge")
    p.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
    p.add_argument(
        "--fixed", type=int, default=0, help="judge the first N of each fixed set (0: all)"
    )
    p.add_argument("--no-judge", action="store_true", help="timing only")
    p.add_argument(
        "--judge", action="store_true", help="judge --model's pictures too (a shapes model)"
    )
    args = p.parse_args()

    from qwen_agent.tools.image_gen import ImageGen, load_pipeline

    with tempfile.TemporaryDirectory() as out:
        gen = ImageGen(model=args.model, output_dir=out)
        t0 = time.perf_counter()
        load_pipeline(gen.model)
        print(f"model {gen.model.name}: loaded in {time.perf_counter() - t0:.2f} s")
        options = {"steps": args.steps} if args.steps else {}
        _, used = gen.generate("a red circle", seed=0, **options)  # warm-up
        times = []
        for i in range(args.images):
            t0 = time.perf_counter()
            gen.generate(
                "a small blue square at the top left on a yellow background", seed=i, **options
            )
            times.append(time.perf_counter() - t0)
        times.sort()
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        print(
            f"{used['width']}x{used['height']}, {used['steps']} steps, guidance "
            f"{used['guidance_scale']}: median {statistics.median(times):.3f} s/image, "
            f"p90 {p90:.3f} s over {len(times)} images"
        )
        if args.no_judge or (args.model and not args.judge):
            return
        judge(gen, generated_prompts(args.generated, seed=12345), "generated")
        n = args.fixed or None
        judge(gen, HELD_OUT[:n], "held-out")
        judge(gen, LONG[:n], "long")


if __name__ == "__main__":
    main()
