"""The ``image_gen`` tool: text to image with any diffusers text-to-image pipeline.

    gen = ImageGen()                                  # the bundled qwen-tiny-shapes model
    gen = ImageGen(model="/models/sd-turbo")          # any pipeline directory
    agent = Agent(tools=[gen])                        # or tools=["image_gen"]
    gen.call(prompt="a small red circle at the top left on a blue background")

The directory is loaded with ``AutoPipelineForText2Image.from_pretrained`` (Stable
Diffusion, SDXL, SD-Turbo, PixArt, Flux, ... whatever diffusers maps), falling back to
``DiffusionPipeline.from_pretrained``; never from a hub (``local_files_only``). It is loaded
once per process for each (directory, device, dtype), behind a lock, and shared by every
tool instance. Device: CUDA, then Apple's MPS, then CPU; dtype: bfloat16 (or float16) on
CUDA, float32 elsewhere. Steps, size, guidance and negative prompt have per-model defaults:
``generation_defaults.json`` in the model directory wins, then a table by pipeline class,
then the model's own sample size. Each image is written atomically as a PNG into
``output_dir`` (default: ``<data dir>/images/<session_id>``) and returned as an
:class:`~qwen_agent.messages.ImageItem` with a line saying what was drawn, so the CLI prints
the path and the agent and web app show the picture. Progress goes to the
``qwen_agent.tools.image_gen`` logger (and to ``progress=`` if given).

Pictures are not kept forever: each time one is written, ``quota`` (a
:class:`~qwen_agent.tools._files.Quota`, or a table of its limits in a config file) is
applied, oldest first: pictures older than a week go, a session's folder keeps at most 200
pictures and 256 MiB, and all sessions' folders together 2,000 pictures and 2 GiB (the
total limits hold where the default layout puts sessions side by side; an ``output_dir``
the user names is one folder, kept on its own). Empty session folders are removed (served
requests without a conversation id get a folder each). Only files this tool names
(``image-<time>-<hex>.png``) are ever deleted::

    ImageGen(quota={"max_age_hours": 24, "max_files": 50})
    ImageGen(quota=Quota(max_age_hours=None, max_total_bytes=10 * 2**30))
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qwen_agent.errors import ConfigError, ToolCallError, ToolError
from qwen_agent.messages import ImageItem, TextItem
from qwen_agent.tool import Tool, check_timeout

from ._files import Quota, data_dir, prune, save_atomic

__all__ = ["ImageGen", "Quota", "bundled_pipeline_path", "load_pipeline", "pipeline_defaults"]

logger = logging.getLogger(__name__)

BUNDLED = "qwen-tiny-shapes"
MAX_SIDE = 2048
MAX_STEPS = 200
#: the names this tool gives its pictures, the only files its quota deletes
IMAGE_NAME = re.compile(r"image-\d{8}-\d{6}-[0-9a-f]{8}\.png")

#: defaults by pipeline class, for directories without a generation_defaults.json
CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "StableDiffusionPipeline": {"steps": 25, "guidance_scale": 7.5},
    "StableDiffusionXLPipeline": {"steps": 30, "guidance_scale": 5.0},
    "StableDiffusion3Pipeline": {"steps": 28, "guidance_scale": 7.0},
    "PixArtAlphaPipeline": {"steps": 20, "guidance_scale": 4.5},
    "PixArtSigmaPipeline": {"steps": 20, "guidance_scale": 4.5},
    "FluxPipeline": {"steps": 28, "guidance_scale": 3.5},
    "LatentConsistencyModelPipeline": {"steps": 4, "guidance_scale": 8.0},
}
#: distilled one-step models (SD-Turbo, SDXL-Turbo) take few steps and no guidance
TURBO_DEFAULTS = {"steps": 2, "guidance_scale": 0.0}
FALLBACK_DEFAULTS = {"steps": 25, "guidance_scale": 5.0}


def bundled_pipeline_path() -> Path:
    """The bundled qwen-tiny-shapes pipeline directory."""
    from qwen_agent.bundled import TINY_SHAPES

    return TINY_SHAPES


# -- loading ------------------------------------------------------------------------------
_pipelines: dict[tuple[str, str, str], Any] = {}
_load_lock = threading.Lock()
#: one generation at a time per pipeline: diffusers pipelines keep per-call state
_run_locks: dict[tuple[str, str, str], threading.Lock] = {}


def _device_and_dtype(device: str | None, dtype: str | None) -> tuple[str, str]:
    import torch

    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if dtype is None:
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        elif device == "mps":
            dtype = "float16"
        else:
            dtype = "float32"
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ConfigError(f"image_gen dtype must be float32, float16 or bfloat16, not {dtype!r}")
    return device, dtype


def load_pipeline(
    model: str | os.PathLike[str], device: str | None = None, dtype: str | None = None
) -> tuple[Any, tuple[str, str, str]]:
    """The pipeline in directory ``model`` on ``device`` in ``dtype``, loaded once per
    process; returns it and its cache key."""
    path = Path(model).expanduser()
    if not (path / "model_index.json").is_file():
        raise ConfigError(
            f"image_gen model {str(model)!r} is not a diffusers pipeline directory "
            "(no model_index.json); give the folder that save_pretrained() wrote"
        )
    device, dtype = _device_and_dtype(device, dtype)
    key = (str(path.resolve()), device, dtype)
    with _load_lock:
        if key in _pipelines:
            return _pipelines[key], key
        try:
            import torch
            from diffusers import AutoPipelineForText2Image, DiffusionPipeline
        except ImportError as exc:
            raise ConfigError(
                f"image_gen needs the [image] extra ({exc.name} is missing): "
                "pip install 'qwen-agent-kit[image]'"
            ) from None
        t0 = time.monotonic()
        kwargs = {"dtype": getattr(torch, dtype), "local_files_only": True}
        try:
            pipe = AutoPipelineForText2Image.from_pretrained(str(path), **kwargs)
        except ValueError as exc:  # a class AutoPipeline does not map
            logger.info("AutoPipelineForText2Image: %s; trying DiffusionPipeline", exc)
            pipe = DiffusionPipeline.from_pretrained(str(path), **kwargs)
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        logger.info(
            "image_gen: loaded %s (%s) on %s in %.1f s",
            path.name,
            type(pipe).__name__,
            device,
            time.monotonic() - t0,
        )
        _pipelines[key] = pipe
        _run_locks[key] = threading.Lock()
        return pipe, key


def pipeline_defaults(model: str | os.PathLike[str], pipe: Any) -> dict[str, Any]:
    """Steps, guidance scale, width and height for the pipeline in ``model``."""
    path = Path(model)
    cls = type(pipe).__name__
    out: dict[str, Any] = dict(
        TURBO_DEFAULTS
        if "turbo" in path.name.lower()
        else CLASS_DEFAULTS.get(cls, FALLBACK_DEFAULTS)
    )
    side = _native_side(pipe)
    out.setdefault("width", side)
    out.setdefault("height", side)
    out.setdefault("negative_prompt", "")
    file = path / "generation_defaults.json"
    if file.is_file():
        try:
            extra = json.loads(file.read_text())
        except ValueError as exc:
            raise ConfigError(f"{file} is not valid JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise ConfigError(f"{file} must hold a JSON object")
        out.update(extra)
    return out


def _native_side(pipe: Any) -> int:
    side = getattr(pipe, "default_sample_size", None)
    unet = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if side is None and unet is not None:
        side = getattr(unet.config, "sample_size", None)
    if isinstance(side, (list, tuple)):
        side = side[0]
    scale = getattr(pipe, "vae_scale_factor", 8) or 8
    return int(side * scale) if side else 512


# -- the tool -----------------------------------------------------------------------------
class ImageGen(Tool):
    """Draws a picture from a description with a diffusion model; returns the PNG."""

    name = "image_gen"
    description = (
        "Draw an image from a text description (what to show, colours, positions) and "
        "return the picture."
    )
    parameters = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "what the picture shows"},
            "negative_prompt": {"type": "string", "description": "what it must not show"},
            "width": {"type": "integer", "description": "width in pixels"},
            "height": {"type": "integer", "description": "height in pixels"},
            "steps": {"type": "integer", "description": "denoising steps"},
            "seed": {"type": "integer", "description": "random seed, for the same picture"},
            "guidance_scale": {"type": "number", "description": "how closely to follow"},
        },
        "required": ["prompt"],
    }

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        session_id: str | None = None,
        defaults: dict[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
        timeout: float | None = 600.0,
        quota: Quota | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = Path(model).expanduser() if model is not None else bundled_pipeline_path()
        if not (self.model / "model_index.json").is_file():
            raise ConfigError(
                f"image_gen model {str(self.model)!r} is not a diffusers pipeline directory "
                "(no model_index.json)"
            )
        self.device, self.dtype = device, dtype
        self.session_id = session_id or f"session-{secrets.token_hex(8)}"
        #: the folder of all sessions' folders, where the total limits hold (None: the
        #: user named output_dir, a folder kept on its own)
        self.images_root = data_dir() / "images" if output_dir is None else None
        self.output_dir = (
            Path(output_dir)
            if self.images_root is None
            else self.images_root / _folder_name(self.session_id)
        )
        self.quota = Quota.of(quota)
        self.overrides = dict(defaults or {})
        self.progress = progress
        self.timeout = check_timeout(timeout, "image_gen timeout")

    def call(self, prompt: str, **options: Any) -> list[TextItem | ImageItem]:  # type: ignore[override]
        path, used = self.generate(prompt, **options)
        return [
            TextItem(
                text=f"Drew {used['width']}x{used['height']} image for {prompt!r} "
                f"(seed {used['seed']}, {used['steps']} steps): {path.name}"
            ),
            ImageItem(image=str(path)),
        ]

    def generate(self, prompt: str, **options: Any) -> tuple[Path, dict[str, Any]]:
        """Draw ``prompt``; return the PNG's path and the settings used (seed included)."""
        import torch

        if not isinstance(prompt, str) or not prompt.strip():
            raise ToolCallError("image_gen needs a non-empty prompt")
        pipe, key = load_pipeline(self.model, self.device, self.dtype)
        used = {**pipeline_defaults(self.model, pipe), **self.overrides}
        used.update({k: v for k, v in options.items() if v is not None})
        multiple = max(8, getattr(pipe, "vae_scale_factor", 8) or 8)
        used = _checked(used, multiple, _native_side(pipe))
        if used.get("seed") is None:
            used["seed"] = secrets.randbelow(2**31)
        generator = torch.Generator(device="cpu").manual_seed(used["seed"])
        total = used["steps"]
        started = time.monotonic()

        deadline = started + (self.timeout or 600.0)

        def on_step(pipe_: Any, step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            done = step + 1
            if time.monotonic() > deadline:  # the agent gave up: free the pipeline
                pipe_._interrupt = True
            if self.progress is not None:
                self.progress(done, total)
            if time.monotonic() - started > 2 and (done == total or done % max(1, total // 5) == 0):
                logger.info("image_gen: step %d/%d", done, total)
            return kwargs

        call = {
            "prompt": prompt,
            "num_inference_steps": total,
            "guidance_scale": used["guidance_scale"],
            "width": used["width"],
            "height": used["height"],
            "generator": generator,
            "callback_on_step_end": on_step,
        }
        if used.get("negative_prompt") and used["guidance_scale"] > 1:
            call["negative_prompt"] = used["negative_prompt"]
        with _run_locks[key], torch.inference_mode():
            try:
                image = pipe(**call).images[0]
            except (ValueError, RuntimeError) as exc:
                raise ToolError(f"image_gen failed: {type(exc).__name__}: {exc}") from None
        if time.monotonic() > deadline:
            raise ToolError(f"image_gen stopped after {self.timeout:g} s (the tool's timeout)")
        path = self._write(image)
        logger.info("image_gen: %s in %.1f s", path, time.monotonic() - started)
        return path, used

    def _write(self, image: Any) -> Path:
        name = f"image-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}.png"
        for attempt in range(2):
            try:
                path = save_atomic(self.output_dir / name, image)
                break
            except FileNotFoundError:  # another sweep removed the folder as it was made
                if attempt:
                    raise ToolError(
                        "image_gen could not save the image: its folder went away"
                    ) from None
            except OSError as exc:
                raise ToolError(f"image_gen could not save the image: {exc.strerror}") from None
        prune(self.output_dir, self.quota, IMAGE_NAME, root=self.images_root, keep=path)
        return path


def _folder_name(session_id: str) -> str:
    """A folder name for a session id: the id itself when it is a plain name, else a hash
    of it (ids such as ``agent:conversation`` come from clients)."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}", session_id):
        return session_id
    import hashlib

    return "session-" + hashlib.sha256(session_id.encode()).hexdigest()[:32]


def _checked(used: dict[str, Any], multiple: int, native: int) -> dict[str, Any]:
    """Sizes rounded to what the model takes, and bounds that keep one call reasonable."""
    out = dict(used)
    largest = min(MAX_SIDE, 4 * native)
    for side in ("width", "height"):
        value = _integral(out[side])
        if value is None or not multiple <= value <= largest:
            raise ToolCallError(
                f"image_gen {side} must be an integer from {multiple} to {largest} "
                f"(this model draws {native} x {native}), got {out[side]!r}"
            )
        out[side] = max(multiple, round(value / multiple) * multiple)
    if max(out["width"], out["height"]) > 4 * min(out["width"], out["height"]):
        raise ToolCallError(
            f"image_gen size {out['width']}x{out['height']} is too narrow (at most 4:1)"
        )
    steps = _integral(out["steps"])
    if steps is None or not 1 <= steps <= MAX_STEPS:
        raise ToolCallError(
            f"image_gen steps must be between 1 and {MAX_STEPS}, got {out['steps']!r}"
        )
    out["steps"] = steps
    if out.get("seed") is not None:
        seed = _integral(out["seed"])
        if seed is None or not 0 <= seed < 2**63:
            raise ToolCallError(
                f"image_gen seed must be an integer from 0 to 2**63-1, got {seed!r}"
            )
        out["seed"] = seed
    g = out["guidance_scale"]
    if not isinstance(g, (int, float)) or isinstance(g, bool) or not 0 <= g <= 50:
        raise ToolCallError(f"image_gen guidance_scale must be between 0 and 50, got {g!r}")
    out["guidance_scale"] = float(g)
    return out


def _integral(value: Any) -> int | None:
    """``value`` as an int when it is one (JSON's 2.0 included), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return None
