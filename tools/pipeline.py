"""AI models as tools: a local transformers ``pipeline()`` task or a diffusers pipeline
directory, with a schema that comes from the task (the HuggingFace Agent's idea).

    caption = PipelineTool(task="image-to-text", model="/models/blip")
    sentiment = PipelineTool(task="text-classification", model="/models/distilbert-sst2")
    painter = PipelineTool(model="/models/sd-turbo")         # a diffusers directory
    agent = Agent(tools=[caption, sentiment, painter])

Models load from local directories only (no hub lookups), on first call, once per tool.
Inputs that are files (images, audio) are paths the model names; they are read only from
``input_dirs`` (default: the working directory) and never through a symlink out of them,
so a model cannot make the tool read the host's files. URLs are refused unless the user
passes ``allow_urls=True`` (then http and https only). A task not in :data:`TASKS` takes
one ``inputs`` string and returns what the pipeline returns; as its pipeline may read a
string as a file or fetch it as a URL, every string it is given that names an existing file
or looks like a path or URL goes through the same checks, and only other text is passed
as it is. Outputs that are media (depth maps, speech) are written atomically into
``output_dir`` and returned as content items; other outputs are returned as JSON the model
can read. A call that runs past ``timeout`` seconds is stopped at the model's next layer
and reported as a ToolError, and the model is free for the next call.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_agent.errors import ConfigError, ToolCallError, ToolError
from qwen_agent.messages import FileItem, ImageItem, TextItem
from qwen_agent.tool import Tool, check_timeout

from ._files import data_dir, save_atomic

__all__ = ["PipelineTool", "TASKS", "TaskSpec"]

logger = logging.getLogger(__name__)

_TEXT = {"type": "string", "description": "the text"}
_IMAGE = {"type": "string", "description": "path of the image file"}
_AUDIO = {"type": "string", "description": "path of the audio file"}
_LABELS = {"type": "array", "items": {"type": "string"}, "description": "the candidate labels"}

#: a URL: a scheme, then "://" (transformers fetches http and https; other readers more)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: text that is written as a path: absolute, from home, relative with ./ or ../, or a drive
_PATH_START = re.compile(r"^(?:[/\\~]|\.\.?[/\\]|[A-Za-z]:[/\\]|file:)")


@dataclass(frozen=True)
class TaskSpec:
    """How one task looks to the model: what it does, its arguments, how to run it."""

    description: str
    properties: dict[str, Any]
    required: tuple[str, ...]
    #: (pipeline, arguments, tool) -> what the tool returns
    run: Callable[[Any, dict[str, Any], PipelineTool], Any]
    #: the transformers task to load, when it differs from the name the user gives
    load_as: str | None = None
    files: tuple[str, ...] = field(default=())  # arguments that are input file paths


def _run_text(pipe: Any, a: dict[str, Any], _t: Any) -> Any:
    return pipe(a["text"])


def _run_generate(pipe: Any, a: dict[str, Any], _t: Any) -> Any:
    prompt: Any = a["prompt"]
    if getattr(pipe.tokenizer, "chat_template", None):  # a chat model: ask it as a user
        prompt = [{"role": "user", "content": prompt}]
    limit = a.get("max_new_tokens", 64)
    out = pipe(prompt, max_new_tokens=int(limit), return_full_text=False)
    text = out[0]["generated_text"] if out else ""
    if isinstance(text, list):  # some versions give the conversation back
        text = text[-1].get("content", "") if text else ""
    return text


def _run_zero_shot(pipe: Any, a: dict[str, Any], _t: Any) -> Any:
    out = pipe(a["text"], candidate_labels=a["labels"])
    return dict(zip(out["labels"], (round(s, 4) for s in out["scores"]), strict=True))


def _run_image(pipe: Any, a: dict[str, Any], _t: Any) -> Any:
    return pipe(a["image"])


def _run_image_labels(pipe: Any, a: dict[str, Any], _t: Any) -> Any:
    return pipe(a["image"], candidate_labels=a["labels"])


def _run_caption(pipe: Any, a: dict[str, Any], _t: Any) -> Any:
    # transformers 5's image-text-to-text pipeline wants text with the image: a chat
    # message where the processor has a chat template, else the prompt as it is
    question = a.get("prompt") or "Describe this image."
    processor = getattr(pipe, "processor", None)
    if getattr(processor, "chat_template", None):
        content = [{"type": "image", "url": a["image"]}, {"type": "text", "text": question}]
        out = pipe(text=[{"role": "user", "content": content}], max_new_tokens=40)
    else:
        out = pipe(images=a["image"], text=a.get("prompt") or "", max_new_tokens=40)
    first = out[0] if out else {}
    if isinstance(first, list):
        first = first[0] if first else {}
    return first.get("generated_text", "") if isinstance(first, dict) else str(first)


def _run_depth(pipe: Any, a: dict[str, Any], tool: PipelineTool) -> Any:
    out = pipe(a["image"])
    path = tool.write(out["depth"], "depth", ".png")
    return [TextItem(text=f"Depth map: {path.name}"), ImageItem(image=str(path))]


def _run_document_qa(pipe: Any, a: dict[str, Any], _t: Any) -> Any:
    return pipe(image=a["image"], question=a["question"])


def _run_audio(pipe: Any, a: dict[str, Any], _t: Any) -> Any:
    return pipe(a["audio"])


def _run_speech(pipe: Any, a: dict[str, Any], tool: PipelineTool) -> Any:
    import numpy as np

    out = pipe(a["text"])
    wave = np.asarray(out["audio"], dtype=np.float32).reshape(-1)
    path = tool.write(_wav_bytes(wave, int(out["sampling_rate"])), "speech", ".wav")
    return [TextItem(text=f"Speech: {path.name}"), FileItem(file=str(path), name=path.name)]


def _run_fill_mask(pipe: Any, a: dict[str, Any], _t: Any) -> Any:
    mask = pipe.tokenizer.mask_token
    text = a["text"].replace("[MASK]", mask).replace("<mask>", mask)
    if mask not in text:
        raise ToolCallError(f"fill-mask: the text must contain {mask} where a word is missing")
    return [{"token": o["token_str"], "score": round(o["score"], 4)} for o in pipe(text)]


TASKS: dict[str, TaskSpec] = {
    "text-classification": TaskSpec(
        "Classify a text (e.g. its sentiment); returns labels with scores.",
        {"text": _TEXT},
        ("text",),
        _run_text,
    ),
    "token-classification": TaskSpec(
        "Find named entities (people, places, organisations) in a text.",
        {"text": _TEXT},
        ("text",),
        _run_text,
    ),
    "zero-shot-classification": TaskSpec(
        "Score how well a text fits each of the given labels.",
        {"text": _TEXT, "labels": _LABELS},
        ("text", "labels"),
        _run_zero_shot,
    ),
    "fill-mask": TaskSpec(
        "Guess the missing word written as [MASK] in a text.",
        {"text": _TEXT},
        ("text",),
        _run_fill_mask,
    ),
    "text-generation": TaskSpec(
        "Continue or answer a prompt with a language model.",
        {
            "prompt": {"type": "string", "description": "the prompt"},
            "max_new_tokens": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1024,
                "description": "longest reply, in tokens",
            },
        },
        ("prompt",),
        _run_generate,
    ),
    "image-classification": TaskSpec(
        "Say what an image shows, as labels with scores.",
        {"image": _IMAGE},
        ("image",),
        _run_image,
        files=("image",),
    ),
    "zero-shot-image-classification": TaskSpec(
        "Score how well an image fits each of the given labels.",
        {"image": _IMAGE, "labels": _LABELS},
        ("image", "labels"),
        _run_image_labels,
        files=("image",),
    ),
    "object-detection": TaskSpec(
        "Find the objects in an image, with their boxes.",
        {"image": _IMAGE},
        ("image",),
        _run_image,
        files=("image",),
    ),
    "image-to-text": TaskSpec(
        "Describe an image in words (a caption).",
        {"image": _IMAGE, "prompt": {"type": "string", "description": "optional question"}},
        ("image",),
        _run_caption,
        load_as="image-text-to-text",
        files=("image",),
    ),
    "depth-estimation": TaskSpec(
        "Estimate the depth of each pixel of an image; returns a depth map image.",
        {"image": _IMAGE},
        ("image",),
        _run_depth,
        files=("image",),
    ),
    "document-question-answering": TaskSpec(
        "Answer a question about a document image.",
        {"image": _IMAGE, "question": {"type": "string", "description": "the question"}},
        ("image", "question"),
        _run_document_qa,
        files=("image",),
    ),
    "automatic-speech-recognition": TaskSpec(
        "Transcribe speech in an audio file to text.",
        {"audio": _AUDIO},
        ("audio",),
        _run_audio,
        files=("audio",),
    ),
    "audio-classification": TaskSpec(
        "Classify an audio clip; returns labels with scores.",
        {"audio": _AUDIO},
        ("audio",),
        _run_audio,
        files=("audio",),
    ),
    "text-to-audio": TaskSpec(
        "Speak a text aloud; returns a WAV file.", {"text": _TEXT}, ("text",), _run_speech
    ),
}
TASKS["image-text-to-text"] = TASKS["image-to-text"]
TASKS["sentiment-analysis"] = TASKS["text-classification"]
TASKS["ner"] = TASKS["token-classification"]
TASKS["text-to-speech"] = TASKS["text-to-audio"]


class PipelineTool(Tool):
    """A local model as a tool: ``PipelineTool(task=..., model=DIR)`` for transformers, or
    ``PipelineTool(model=DIR)`` for a diffusers text-to-image directory."""

    def __init__(
        self,
        task: str | None = None,
        model: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        device: str | None = None,
        input_dirs: list[str | os.PathLike[str]] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        pipeline_kwargs: dict[str, Any] | None = None,
        timeout: float | None = 600.0,
        allow_urls: bool = False,
    ) -> None:
        if model is None:
            raise ConfigError("PipelineTool needs model=DIR (a local model directory)")
        self.model = Path(model).expanduser()
        if not self.model.is_dir():
            raise ConfigError(f"PipelineTool model {str(model)!r} is not a directory")
        self._image_gen: Any = None
        if (self.model / "model_index.json").is_file():  # a diffusers pipeline directory
            if task not in (None, "text-to-image"):
                raise ConfigError(
                    f"{self.model} is a diffusers pipeline: its task is text-to-image, not {task!r}"
                )
            from qwen_agent.tools.image_gen import ImageGen

            self._image_gen = ImageGen(
                model=self.model, device=device, output_dir=output_dir, timeout=timeout
            )
            task = "text-to-image"
            self.task_spec = None
            self.parameters = ImageGen.parameters
            self.description = description or f"{ImageGen.description} (model {self.model.name})"
        else:
            if not task:
                raise ConfigError(
                    "PipelineTool needs task=... for a transformers model, one of: "
                    + ", ".join(sorted(TASKS))
                    + " (or any other transformers pipeline task)"
                )
            self.task_spec = TASKS.get(task)
            if self.task_spec is not None:
                props, required = self.task_spec.properties, list(self.task_spec.required)
                summary = self.task_spec.description
            else:
                props = {"inputs": {"type": "string", "description": "the pipeline's input"}}
                required, summary = ["inputs"], f"Run the {task} model."
            self.parameters = {
                "type": "object",
                "properties": props,
                "required": required,
                "additionalProperties": False,
            }
            self.description = description or f"{summary} (model {self.model.name})"
        self.task = task
        self.name = name or re.sub(r"[^A-Za-z0-9_]", "_", task)
        self.device = device
        self.input_dirs = [Path(d).resolve() for d in (input_dirs or [Path.cwd()])]
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.pipeline_kwargs = dict(pipeline_kwargs or {})
        self.timeout = check_timeout(timeout, "pipeline timeout")
        if not isinstance(allow_urls, bool):
            raise ConfigError(f"PipelineTool allow_urls must be True or False, not {allow_urls!r}")
        self.allow_urls = allow_urls
        self._pipe: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one call at a time: pipelines keep per-call state
        #: when the running call must stop (monotonic seconds); None between calls
        self._deadline: float | None = None
        super().__init__()

    def call(self, **arguments: Any) -> Any:
        if self._image_gen is not None:
            return self._image_gen.call(**arguments)
        limit = self.timeout or 600.0
        deadline = time.monotonic() + limit
        if self.task_spec is None:  # the pipeline may take any string for a file or a URL
            arguments = {k: self._confine_strings(v) for k, v in arguments.items()}
        else:
            for key in self.task_spec.files:
                arguments[key] = self._input_file(arguments[key])
        pipe = self._pipeline(deadline)
        if not self._run_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ToolError(f"{self.name} timed out after {limit:g} s waiting for an earlier call")
        try:
            self._deadline = deadline
            if self.task_spec is None:
                out = pipe(arguments["inputs"])
            else:
                out = self.task_spec.run(pipe, arguments, self)
        except _Stopped:
            out = None
        finally:
            self._deadline = None
            self._run_lock.release()
        if time.monotonic() > deadline:  # stopped mid-run, or finished too late to count
            raise ToolError(f"{self.name} timed out after {limit:g} s (the tool's timeout)")
        return out if isinstance(out, (str, list)) and _is_items(out) else _jsonable(out)

    # -- helpers ------------------------------------------------------------------------
    def _pipeline(self, deadline: float) -> Any:
        if not self._load_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ToolError(f"{self.name} timed out while its model was loading")
        try:
            if self._pipe is None:
                try:
                    from transformers import pipeline
                except ImportError:
                    raise ConfigError(
                        "PipelineTool needs the [local] extra: pip install 'qwen-agent-kit[local]'"
                    ) from None
                spec = self.task_spec
                task = spec.load_as if spec is not None and spec.load_as else self.task
                logger.info("pipeline: loading %s for %s", self.model, task)
                kwargs = {"device": self.device, **self.pipeline_kwargs}
                kwargs = {k: v for k, v in kwargs.items() if v is not None}
                try:
                    self._pipe = pipeline(task, model=str(self.model), **kwargs)
                except (OSError, ValueError, KeyError) as exc:
                    logger.warning("pipeline: cannot load %s for %s: %s", self.model, task, exc)
                    raise ConfigError(
                        f"PipelineTool cannot load the {self.model.name} model for {task!r}: "
                        f"{type(exc).__name__} (see the log)"
                    ) from None
                self._watch_deadline(self._pipe)
            return self._pipe
        finally:
            self._load_lock.release()

    def _watch_deadline(self, pipe: Any) -> None:
        """Check the call's deadline before the model and each of its layers run, so a
        call past its timeout stops within a layer (image_gen interrupts its pipeline the
        same way, between steps) and frees the model for the next call."""
        try:
            import torch
        except ImportError:
            return
        model = getattr(pipe, "model", None)
        if not isinstance(model, torch.nn.Module):
            return
        layers = [m for ml in model.modules() if isinstance(ml, torch.nn.ModuleList) for m in ml]
        for module in (model, *layers):
            module.register_forward_pre_hook(self._check_deadline)

    def _check_deadline(self, _module: Any, _args: Any) -> None:
        deadline = self._deadline
        if deadline is not None and time.monotonic() > deadline:
            raise _Stopped

    def _input_file(self, value: Any) -> str:
        """A file argument: a file inside ``input_dirs`` (its real path), or an http(s)
        URL where the user allowed URLs; else a ToolCallError that says why."""
        if not isinstance(value, str) or not value.strip():
            raise ToolCallError(f"{self.name}: a file path is needed, got {value!r}")
        text = value.strip()
        if _URL.match(text):
            return self._url(text)
        try:
            raw = Path(text).expanduser()
            candidates = [raw] if raw.is_absolute() else [d / raw for d in self.input_dirs]
            for cand in candidates:
                real = cand.resolve()
                if any(real.is_relative_to(d) for d in self.input_dirs) and real.is_file():
                    return str(real)
        except (OSError, RuntimeError, ValueError):  # too long, a loop, a NUL byte
            pass
        raise ToolCallError(
            f"{self.name}: no file {value!r:.200} in the folders this tool may read"
        )

    def _url(self, url: str) -> str:
        if not self.allow_urls:
            raise ToolCallError(
                f"{self.name}: give a local file path, not a URL ({url!r:.200}); "
                "this tool does not fetch URLs"
            )
        if not url.lower().startswith(("http://", "https://")):
            raise ToolCallError(f"{self.name}: only http and https URLs, not {url!r:.200}")
        return url

    def _confine_strings(self, value: Any) -> Any:
        """``value`` (any JSON value) for a pipeline that may read a string as a file or a
        URL: strings that look like either are checked as file arguments are (and become
        the file's real path); other text, numbers and the like stay as they are."""
        if isinstance(value, str):
            return self._input_file(value) if self._names_a_file(value) else value
        if isinstance(value, list):
            return [self._confine_strings(v) for v in value]
        if isinstance(value, dict):
            return {k: self._confine_strings(v) for k, v in value.items()}
        return value

    def _names_a_file(self, value: str) -> bool:
        """Whether a pipeline could take ``value`` for a path or a URL: it looks like one,
        or a file or folder of that name exists (from the working directory, where
        transformers looks, or from an input folder)."""
        text = value.strip()
        if not text:
            return False
        if _URL.match(text):
            return True
        if "\n" not in text and _PATH_START.match(text):
            return True
        if not any(c.isspace() for c in text) and ("/" in text or "\\" in text):
            return True
        places = [Path.cwd(), *self.input_dirs]
        return any(os.path.lexists(p / name) for p in places for name in {value, text})

    def write(self, data: Any, stem: str, suffix: str) -> Path:
        """Write an output (a PIL image or bytes) atomically; return its path."""
        out = self.output_dir or data_dir() / "pipeline" / self.name
        try:
            return save_atomic(out / f"{stem}-{secrets.token_hex(6)}{suffix}", data)
        except OSError as exc:
            raise ToolError(f"{self.name} could not save its output: {exc.strerror}") from None


class _Stopped(ToolError):
    """Raised inside the model by the deadline check; :meth:`PipelineTool.call` turns it
    into the timeout's ToolError."""


def _is_items(out: Any) -> bool:
    if isinstance(out, str):
        return True
    return bool(out) and all(isinstance(i, (TextItem, ImageItem, FileItem)) for i in out)


def _jsonable(value: Any) -> Any:
    """Pipeline outputs (numpy floats, tensors) as plain JSON values."""
    return json.loads(json.dumps(value, default=_plain))


def _plain(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _wav_bytes(wave: Any, rate: int) -> bytes:
    import io
    import wave as wavmod

    import numpy as np

    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wavmod.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()
