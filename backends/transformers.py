"""A :class:`~qwen_agent.llm.ChatModel` that runs a causal LM in-process with transformers.

Loads any model directory with a tokenizer and a chat template (Qwen2, Qwen2.5, Qwen3 or the
bundled ``qwen-smol-agent`` and ``qwen-tiny-agent``) on CPU or CUDA, streams text deltas,
honours stop words and ``max_tokens``, and drops the oldest history when the prompt would
not fit the context window (with a warning on the ``qwen_agent`` logger; a request with
``on_overflow="error"`` raises :class:`~qwen_agent.errors.ContextWindowError` instead).
When a hermes request lists tools, tool calls are decoded under the tool guard
(:mod:`qwen_agent.formats.guard`): names and argument keys come from the request's tools
(only the named one for a forced ``tool_choice``). A ``response_format`` of ``json_object``
or ``json_schema`` is enforced token by token with llguidance (the same grammar engine vLLM
offers).
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qwen_agent.backends.kv_prefix import PrefixCache
from qwen_agent.backends.loading import load_model
from qwen_agent.backends.prompting import ChatPrompt, special_tokens
from qwen_agent.bundled import resolve
from qwen_agent.bundled.aids import (
    Lookahead,
    RelevanceCheck,
    answer_source,
    copy_source,
    tool_variants,
)
from qwen_agent.chatml import special_pattern
from qwen_agent.errors import (
    BackendConnectionError,
    BackendResponseError,
    ConfigError,
    ContextWindowError,
)
from qwen_agent.llm import Delta, GenerationConfig, LLMConfig, ModelRequest, Trimmed, Usage
from qwen_agent.messages import Message

__all__ = ["TransformersChatModel", "TransformersOptions"]

log = logging.getLogger("qwen_agent.backends.transformers")
DEFAULT_MAX_TOKENS = 512
#: a request that sets no max_tokens gets DEFAULT_MAX_TOKENS for the reply, or what the
#: window has left after the prompt, down to this much (or a quarter of the default, in a
#: small window), before older exchanges are left out
MIN_REPLY_TOKENS = 128


class TransformersOptions(BaseModel):
    """The transformers backend's own options in an :class:`~qwen_agent.llm.LLMConfig`
    (see :class:`TransformersChatModel`)."""

    model_config = ConfigDict(extra="forbid")
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_context: int | None = Field(default=None, ge=16)
    threads: int | None = Field(default=None, ge=1)
    tool_guard: bool = True
    prefix_cache: int = Field(default=4, ge=0)
    copy_bias: float | None = None
    lookahead: bool | None = None
    relevance: bool | None = None


class TransformersChatModel(ChatPrompt):
    """Runs ``model`` (a local directory, or a hub name already in the local cache).

    Args:
        model: path of the model directory, or a bundled model's name; empty for the
            default bundled model (``qwen-smol-agent``).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        dtype: ``"auto"`` (the checkpoint's dtype on GPU, float32 on CPU), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``.
        max_context: context window in tokens; default: the model's
            ``max_position_embeddings``.
        generation: default sampling options.
        threads: CPU threads for torch (default: torch's choice).
        tool_guard: constrain tool calls to the tools the prompt lists and their schemas
            (default on; see :mod:`qwen_agent.formats.guard`).
        prefix_cache: how many recent token sequences (a prompt and its reply) keep their
            KV cache (default 4; 0: none). A new prompt that starts like one of them is
            computed only from where they part, as vLLM's prefix caching does: an agent's
            system prompt and tool list, and each next turn's whole history, are not
            computed again.
        copy_bias: with the guard, a logit bonus for tokens that copy the last user
            message's words into a string argument, and, in an answer after tool results,
            for tokens that go on with the answer's copy of a result or of the question
            (the rest of a number or word it started quoting, or the next one) (``None``:
            the model folder's ``decoding_aids.json``, else 0).
        lookahead: with the guard, where the model starts copying the last user message
            into a string argument, weigh each span of that message as a whole (one
            batched forward pass) and write the likeliest, instead of choosing word by
            word (``None``: the model folder's ``decoding_aids.json``, else off).
        relevance: with the guard, when the model is about to call a tool in reply to a
            user message, weigh each listed tool by how much more likely the message
            becomes when that tool alone is listed (a noisy channel: one batched forward
            pass), next to the model's own log-probability of calling it. A clearly more
            relevant tool (``RELEVANT_NATS``) replaces the model's pick; a call the two
            together argue against (``CALL_EVIDENCE``) becomes a direct answer (``None``:
            the model folder's ``decoding_aids.json``, else off).

    The three aids prop up the bundled 5.8M-parameter model; a model folder switches them
    on with a ``decoding_aids.json`` (``{"copy_bias": 6.0, "lookahead": true,
    "relevance": true}``); an option given here wins.
    """

    def __init__(
        self,
        model: str = "",
        device: str = "auto",
        dtype: str = "auto",
        max_context: int | None = None,
        generation: GenerationConfig | None = None,
        threads: int | None = None,
        tool_guard: bool = True,
        prefix_cache: int = 4,
        copy_bias: float | None = None,
        lookahead: bool | None = None,
        relevance: bool | None = None,
    ) -> None:
        if dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
        if max_context is not None and max_context < 16:
            raise ConfigError(f"max_context must be at least 16 tokens, got {max_context}")
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise BackendConnectionError(
                "the transformers backend needs torch and transformers: "
                "pip install 'qwen-agent-kit[local]'"
            ) from exc
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        bundled = resolve(model) if model else None
        path = str(bundled) if bundled is not None else model or str(bundled_model_path())
        # the folder's name only: errors and clients never see the host's paths
        self.model_name = Path(path.rstrip("/")).name or path
        self.device = (
            ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        )
        self.generation = generation or GenerationConfig()
        self.tool_guard = tool_guard
        aids = _decoding_aids(Path(path).expanduser())
        self.copy_bias = float(aids.get("copy_bias", 0.0) if copy_bias is None else copy_bias)
        self.lookahead = bool(aids.get("lookahead", False) if lookahead is None else lookahead)
        self.relevance = bool(aids.get("relevance", False) if relevance is None else relevance)
        self._vocab: list[str] | None = None
        self._look: Lookahead | None = None
        self._lltok: Any = None
        self._lock = threading.Lock()
        if prefix_cache < 0:
            raise ConfigError(f"prefix_cache must be 0 or more, got {prefix_cache}")
        #: recent sequences' KV caches (see backends/kv_prefix.py); under self._lock
        self.prefixes = PrefixCache(prefix_cache)
        self._cache_arg = "past_key_values"
        start = time.perf_counter()
        log.info("loading model %s on %s ...", path, self.device)
        self.tokenizer, self.model = load_model(transformers, torch, path, self.device, dtype)
        self.load_seconds = time.perf_counter() - start
        if "cache" in inspect.signature(self.model.forward).parameters:
            self._cache_arg = "cache"  # transformers 5.2x's name; past_key_values is deprecated
        log.info("loaded %s in %.2f s", Path(path).name or path, self.load_seconds)
        cfg_ctx = getattr(self.model.config, "max_position_embeddings", None) or 4096
        self.max_context = max_context or int(cfg_ctx)
        self._eos_ids = _eos_ids(self.model, self.tokenizer)
        self._specials = special_pattern(special_tokens(self.tokenizer))

    @classmethod
    def from_config(cls, config: LLMConfig) -> TransformersChatModel:
        opts = config.backend_options(TransformersOptions)
        return cls(model=config.model, generation=config.generation, **opts.model_dump())

    # -- generation ---------------------------------------------------------------------
    def stream(self, request: ModelRequest) -> Iterator[Delta]:
        messages = request.messages
        opts = request.generation.over(self.generation)
        max_new = opts.max_tokens or min(DEFAULT_MAX_TOKENS, self.max_context // 2)
        if max_new >= self.max_context:
            raise ContextWindowError(
                f"max_tokens={max_new} leaves no room for the prompt in a "
                f"{self.max_context}-token context window",
                param="max_tokens",
            )
        ids, opened, trimmed, max_new = self._fit(
            messages,
            max_new,
            drop=request.on_overflow == "drop_oldest",
            exchanges=request.exchanges,
            thinking=request.thinking,
            least=None if opts.max_tokens else min(MIN_REPLY_TOKENS, max_new // 4),
        )
        guard = None
        if self.tool_guard and request.constraint is not None:
            from qwen_agent.formats.guard import ToolGuard

            guard = ToolGuard.for_constraint(request.constraint)
        fmt = request.response_format
        grammar = None
        if guard is None and fmt is not None and fmt.type != "text":
            grammar = self._grammar(fmt)
        prefix = messages[-1].text if messages[-1].role == "assistant" else ""
        source = copy_source(request) if self.copy_bias or self.lookahead else ""
        answer_from = answer_source(request) if self.copy_bias else ""
        choice = None
        if (
            guard is not None
            and self.relevance
            and request.tool_choice == "auto"
            and messages[-1].role == "user"
        ):
            choice = self._tool_choice(request)
        deltas = self._generate(
            ids, opts, max_new, guard, prefix, source, choice, answer_from, grammar
        )
        deltas = _in_reasoning(deltas) if opened else deltas
        return _announce(trimmed, deltas) if trimmed is not None else deltas

    def _grammar(self, fmt: Any) -> Any:
        """A llguidance matcher for a JSON ``response_format``."""
        try:
            import llguidance
            import llguidance.hf
        except ImportError as exc:
            raise ConfigError(
                "response_format json needs llguidance: pip install 'qwen-agent-kit[local]'"
            ) from exc
        import json

        if self._lltok is None:
            self._lltok = llguidance.hf.from_tokenizer(self.tokenizer, n_vocab=len(self.vocab()))
        schema = fmt.json_schema if fmt.type == "json_schema" else {"type": "object"}
        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            json.dumps(schema), defaults={"whitespace_flexible": False}
        )
        matcher = llguidance.LLMatcher(self._lltok, grammar)
        if matcher.is_error():
            raise ConfigError(f"response_format: the schema cannot be used: {matcher.get_error()}")
        return matcher

    def _tool_choice(self, request: ModelRequest) -> RelevanceCheck | None:
        """The relevance check's prompts: the system message with no tool listed, then
        with each of the request's tools alone, each followed by the last user message."""
        variants = tool_variants(request)
        if not variants or len(variants) < 2:
            return None
        marker = "\ue000"
        question = request.messages[-1].text
        channel = []
        for _, system in variants:
            text = self.render(
                [Message(role="system", content=system), Message(role="user", content=marker)]
            )
            if text.count(marker) != 1:
                return None
            head, tail = text.split(marker)
            channel.append((self._encode(head), self._encode(question + tail)))
        names = [name for name, _ in variants[1:] if name is not None]
        return RelevanceCheck(self._lookahead(), names, channel)

    def _lookahead(self) -> Lookahead:
        """The model's lookahead scorer (made once)."""
        if self._look is None:
            self._look = Lookahead(self.model, self.tokenizer, self._torch)
        return self._look

    def vocab(self) -> list[str]:
        """The decoded text of every token id (computed once)."""
        if self._vocab is None:
            n = len(self.tokenizer)
            self._vocab = self.tokenizer.batch_decode([[i] for i in range(n)])
        return self._vocab

    def _generate(
        self,
        ids: list[int],
        opts: GenerationConfig,
        max_new: int,
        guard: Any = None,
        prefix: str = "",
        source: str = "",
        choice: RelevanceCheck | None = None,
        answer_from: str = "",
        grammar: Any = None,
    ) -> Iterator[Delta]:
        import transformers

        torch = self._torch
        stop_flag = threading.Event()
        streamer = transformers.TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        criteria = transformers.StoppingCriteriaList([_FlagCriteria(stop_flag)])
        kwargs: dict[str, Any] = dict(
            input_ids=torch.tensor([ids], device=self.device),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=self.device),
            max_new_tokens=max_new,
            streamer=streamer,
            stopping_criteria=criteria,
            eos_token_id=self._eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        if guard is not None:
            processor = _GuardProcessor(
                guard,
                self.tokenizer,
                self.vocab(),
                len(ids),
                prefix,
                self._eos_ids,
                copy_from=source,
                copy_bias=self.copy_bias,
                lookahead=self._lookahead() if self.lookahead else None,
                choice=choice,
                answer_from=answer_from,
            )
            kwargs["logits_processor"] = transformers.LogitsProcessorList([processor])
        elif grammar is not None:
            kwargs["logits_processor"] = transformers.LogitsProcessorList(
                [_GrammarProcessor(grammar, len(ids), self._eos_ids, self._lltok.vocab_size)]
            )
        if opts.temperature:
            kwargs.update(
                do_sample=True,
                temperature=opts.temperature,
                top_p=opts.top_p or 1.0,
                top_k=opts.top_k or 0,
            )
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                with self._lock, torch.inference_mode():
                    if opts.seed is not None:
                        torch.manual_seed(opts.seed)
                    out = self._generate_reusing(ids, kwargs)
                    outcome["new"] = out[0, len(ids) :].tolist()
            except Exception as exc:  # reported to the consumer below
                outcome["error"] = exc
                streamer.end()

        thread = threading.Thread(target=work, name="qwen-agent-generate", daemon=True)
        thread.start()
        stops = [s for s in opts.stop if s]
        text, sent = "", 0
        try:
            for piece in streamer:
                text += piece
                hit = min(
                    (i for i in (text.find(s, max(0, sent - len(s))) for s in stops) if i >= 0),
                    default=-1,
                )
                if hit >= 0:
                    stop_flag.set()
                    if hit > sent:
                        yield Delta(text[sent:hit])
                    sent = -1
                    break
                safe = len(text) - _held(text, stops)
                if safe > sent:
                    yield Delta(text[sent:safe])
                    sent = safe
        finally:
            stop_flag.set()  # also when the consumer stops early
            thread.join()
        if "error" in outcome:
            raise BackendResponseError(f"generation failed: {outcome['error']}") from outcome[
                "error"
            ]
        new = outcome.get("new", [])
        usage = Usage(len(ids), len(new))
        if sent < 0:
            yield Delta("", "stop", usage)
            return
        cut = len(new) >= max_new and not (new and new[-1] in self._eos_ids)
        yield Delta(text[sent:], "length" if cut else "stop", usage)

    def _generate_reusing(self, ids: list[int], kwargs: dict[str, Any]) -> Any:
        """``model.generate`` from the cache of the longest stored prefix of ``ids``, if
        any; the sequence it ends with is stored in turn (see ``prefix_cache``). Holds
        ``self._lock``."""
        if self.prefixes.size <= 0:
            return self.model.generate(**kwargs)
        cached = self.prefixes.take(ids)
        if cached is not None:
            kwargs[self._cache_arg] = cached
        out = self.model.generate(**kwargs, return_dict_in_generate=True)
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        if cache is not None:
            self.prefixes.put(out.sequences[0].tolist(), cache)
        return out.sequences


def _in_reasoning(deltas: Iterator[Delta]) -> Iterator[Delta]:
    """The text of a reply whose prompt opened ``<think>``: it starts inside the reasoning,
    so it is given with that opening tag, as a reply that opened it itself is."""
    try:
        yield Delta("<think>\n")
        yield from deltas
    finally:
        close = getattr(deltas, "close", None)
        if close is not None:
            close()


class _GrammarProcessor:
    """Allows only the tokens the llguidance matcher accepts next (and an end of text once
    the grammar is complete)."""

    def __init__(self, matcher: Any, start: int, ends: list[int], vocab_size: int) -> None:
        self.matcher, self.start, self.ends = matcher, start, ends
        self.seen, self.vocab_size = start, vocab_size

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import llguidance.torch as lltorch

        m = self.matcher
        for token in input_ids[0, self.seen :].tolist():
            m.consume_token(token)
        self.seen = input_ids.shape[1]
        if m.is_stopped() or m.is_error():
            allowed = scores.new_full(scores.shape, float("-inf"))
            allowed[:, self.ends] = 0
            return scores + allowed
        mask = lltorch.allocate_token_bitmask(1, self.vocab_size)
        lltorch.fill_next_token_bitmask(m, mask)
        lltorch.apply_token_bitmask_inplace(scores, mask.to(scores.device))
        return scores


class _FlagCriteria:
    """Stops generation when the consumer saw a stop word or went away."""

    def __init__(self, flag: threading.Event) -> None:
        self.flag = flag

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full(
            (input_ids.shape[0],), self.flag.is_set(), dtype=torch.bool, device=input_ids.device
        )


class _GuardProcessor:
    """Masks the tokens the tool guard rules out at each step (and nudges string values
    towards copies of the user's words, with ``copy_bias``). With ``lookahead``, where the
    model starts copying the user's words into a string argument, it weighs every copy
    (spans from the ``span_starts`` likeliest word starts, up to ``max_span_words`` words)
    as a whole, then writes the likeliest one out and closes the value."""

    def __init__(
        self,
        guard: Any,
        tokenizer: Any,
        vocab: list[str],
        start: int,
        prefix: str,
        ends: tuple[int, ...] | list[int] = (),
        copy_from: str = "",
        copy_bias: float = 0.0,
        lookahead: Lookahead | None = None,
        max_span_words: int = 12,
        span_starts: int = 4,
        choice: RelevanceCheck | None = None,
        answer_from: str = "",
    ):
        self.guard, self.tokenizer, self.vocab = guard, tokenizer, vocab
        self.start, self.prefix, self.ends = start, prefix, list(ends)
        self.copy_from, self.copy_bias = copy_from, copy_bias
        self.lookahead = lookahead
        self.max_span_words, self.span_starts = max_span_words, span_starts
        #: the text the lookahead chose: followed token by token, then the value closes
        self.plan: str | None = None
        self.closing = False
        #: the relevance check, until the model first goes to open a call
        self.choice = choice
        #: the tokens that open a call, and whether the reply may not open one
        self.openers = _openers(vocab, guard.open) if choice else []
        self._opener_set = frozenset(self.openers)
        self.no_call = False
        #: what an answer after a tool's result copies from (the results, the question)
        self.answer_from = answer_from

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        text = self.prefix + self.tokenizer.decode(input_ids[0, self.start :])
        if self.choice is not None:
            self._decide(text, input_ids, scores)
        if self.plan is not None:
            planned = self._follow(text, scores)
            if planned is not None:
                return planned
        favoured = self._nudge(text, scores)
        if self.answer_from and self.copy_bias and self.guard.open not in text:
            self._quote(text, scores)
        if self.lookahead is not None and self._choose(text, input_ids, scores, favoured):
            planned = self._follow(text, scores)
            if planned is not None:
                return planned
        return self._mask(text, scores)

    def _decide(self, text: str, input_ids: Any, scores: Any) -> None:
        """Where the model first goes to open a tool call, runs the relevance check: plans
        the call's head with the chosen tool, or rules calls out for this reply."""
        from qwen_agent.formats.guard import CALL_HEAD

        assert self.choice is not None
        if self.guard.open in text:  # a call began some other way: nothing to decide
            self.choice = None
            return
        if int(scores[0].argmax()) not in self._opener_set:
            return
        choice, self.choice = self.choice, None
        name = choice.decide(input_ids, self.guard.starting_with('"', self.vocab))
        if name is None:
            self.no_call = True
        else:
            self.plan = text + CALL_HEAD + name

    def _nudge(self, text: str, scores: Any) -> list[int]:
        """Applies the copy bias (if any); returns the tokens that would copy."""
        if not self.copy_from:
            return []
        favoured, locked = self.guard.copy_nudge(text, self.copy_from, self.vocab)
        if not self.copy_bias:
            return favoured
        if locked:  # a copied word is copied whole
            kept = scores[:, favoured]
            scores[:] = float("-inf")
            scores[:, favoured] = kept
        elif favoured:
            scores[:, favoured] += self.copy_bias
        return favoured

    def _quote(self, text: str, scores: Any) -> None:
        """In an answer after a tool's result: where the answer is copying the result (or
        the question), the copy bias goes to the tokens that go on copying it."""
        from qwen_agent.formats.guard import copy_continuations

        rests, _ = copy_continuations(text, self.answer_from)
        ids = self.guard.continuing(rests, self.vocab) if rests else []
        if ids:
            scores[:, ids] += self.copy_bias

    def _mask(self, text: str, scores: Any) -> Any:
        found = self.guard.mask(text, self.vocab)
        if self.no_call:
            if found is None:
                found = ("ban", self.openers)
            elif found[0] == "ban":
                found = ("ban", [*found[1], *self.openers])
        if self.ends and self.guard.guiding(text):  # no end of text inside a call
            if found is None:
                found = ("ban", self.ends)
            elif found[0] == "ban":
                found = ("ban", [*found[1], *self.ends])
        if self.closing:  # the chosen value is written out: its closing quote comes next
            self.closing = False
            quotes = self.guard.starting_with('"', self.vocab)
            if found is None or found[0] == "ban":
                banned = set(found[1]) if found else set()
                found = ("only", [i for i in quotes if i not in banned])
            else:
                allowed = set(found[1])
                found = ("only", [i for i in quotes if i in allowed] or found[1])
        if found is None:
            return scores
        kind, ids = found
        if kind == "ban":
            scores[:, ids] = float("-inf")
            return scores
        masked = scores.new_full(scores.shape, float("-inf"))
        masked[:, ids] = scores[:, ids]
        return masked

    def _follow(self, text: str, scores: Any) -> Any:
        """Scores that allow only the plan's next tokens; None once the plan is written
        out (the guard goes on from there) or the text left it."""
        plan = self.plan or ""
        if not plan.startswith(text):
            self.plan = None
            return None
        rest = plan[len(text) :]
        ids = self.guard.spelling(rest, self.vocab)
        if not ids:
            self.plan, self.closing = None, not rest
            return None
        masked = scores.new_full(scores.shape, float("-inf"))
        masked[:, ids] = scores[:, ids]
        return masked

    def _choose(self, text: str, input_ids: Any, scores: Any, favoured: list[int]) -> bool:
        """At the opening quote of a string argument the model starts copying the user's
        message into, plans the likeliest copy; False where there is nothing to choose."""
        if not self.copy_from or not self.guard.string_start(text):
            return False
        if int(scores[0].argmax()) not in set(favoured):
            return False  # a value of the model's own, not a copy
        from qwen_agent.formats.guard import copy_spans

        look = self.lookahead
        assert look is not None
        spans = copy_spans(self.copy_from, self.max_span_words)
        if not spans:
            return False
        start = look.start(input_ids)
        # weigh the word starts by their first token (a word's first token does not depend
        # on the words after it), then encode only the spans from the likeliest starts
        lead: dict[int, float] = {}
        for at, span in spans:
            if at not in lead:
                ids = look.encode(span)
                lead[at] = float(start[0][ids[0]]) if ids else float("-inf")
        keep = set(sorted(lead, key=lead.__getitem__)[-self.span_starts :])
        options = [(span, look.encode(span)) for at, span in spans if at in keep]
        options = [(span, ids) for span, ids in options if ids]
        if not options:
            return False
        quotes = self.guard.starting_with('"', self.vocab)
        totals = look.score(start, [ids for _, ids in options], quotes)
        self.plan = text + options[max(range(len(options)), key=totals.__getitem__)][0]
        return True


def _openers(vocab: list[str], tag: str) -> list[int]:
    """The tokens whose text opens a call (or starts to: a prefix of ``tag``), found once
    per vocabulary."""
    global _OPENERS
    if _OPENERS is None or _OPENERS[0] is not vocab or _OPENERS[1] != tag:
        found = []
        for i, token in enumerate(vocab):
            t = token.lstrip()
            if t.startswith(tag) or (len(t) >= 2 and tag.startswith(t)):
                found.append(i)
        _OPENERS = (vocab, tag, found)
    return _OPENERS[2]


_OPENERS: tuple[list[str], str, list[int]] | None = None


def _decoding_aids(folder: Path) -> dict[str, Any]:
    """The defaults a model folder asks for in ``decoding_aids.json`` (none when absent)."""
    f = folder / "decoding_aids.json" if folder.is_dir() else None
    if f is None or not f.is_file():
        return {}
    try:
        found = json.loads(f.read_text())
    except ValueError as exc:
        raise ConfigError(f"{f} is not valid JSON: {exc}") from exc
    known = {"copy_bias", "lookahead", "relevance"}
    if not isinstance(found, dict) or not set(found) - {"why"} <= known:
        raise ConfigError(f"{f} may set only {sorted(known)} (and a 'why' note)")
    return found


def bundled_model_path() -> Path:
    """The folder of the default bundled model (``qwen-smol-agent``, merged into the cache
    on first use)."""
    from qwen_agent.bundled import default_model_dir

    return default_model_dir()


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        eos = getattr(source, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif eos:
            ids.update(eos)
    for tok in ("<|im_end|>", "<|endoftext|>"):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return sorted(ids)


def _announce(trimmed: Trimmed, deltas: Iterator[Delta]) -> Iterator[Delta]:
    yield Delta("", trimmed=trimmed)
    yield from deltas


def _held(text: str, stops: list[str]) -> int:
    """How many trailing characters could still become a stop word."""
    held = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), held, -1):
            if text.endswith(s[:k]):
                held = k
                break
    return held
