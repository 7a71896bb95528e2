"""Decoding aids for the bundled 5.8M-parameter ``qwen-tiny-agent`` model.

A model that small copies names and values poorly and matches questions to unseen tools'
names poorly; these prop it up, and only models whose folder has a ``decoding_aids.json``
get them (the transformers backend reads it; see its ``copy_bias``, ``lookahead`` and
``relevance`` options). A real Qwen model needs none of them.

- :class:`Lookahead`: weighs whole spans of the user's message as a string argument in one
  batched forward pass, instead of word by word;
- :class:`RelevanceCheck` and :func:`pick`: the relevance check, which tool (if any) a reply's
  call should name, from the model's own probability and a noisy channel;
- :func:`answer_source` and :func:`copy_source`: what an answer after tool results, and a
  string argument, may copy;
- :func:`tool_variants`: the system prompts of the relevance check's noisy channel.

Each takes what it needs from the request as data (its tools, constraint and
:class:`~qwen_agent.llm.TurnContext`), never from its rendered text.

torch is never imported here; the backend hands it in.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "CALL_EVIDENCE",
    "RELEVANT_NATS",
    "Lookahead",
    "RelevanceCheck",
    "answer_source",
    "copy_source",
    "pick",
    "tool_variants",
]


class Lookahead:
    """Weighs whole alternatives at once: the model's log-probability of each one's tokens
    after the text so far, plus that of a closing quote right after it (the alternative
    ends there). One forward pass over the text, then one over all alternatives in a batch
    from a copy of its cache."""

    def __init__(self, model: Any, tokenizer: Any, torch: Any) -> None:
        import inspect

        self.model, self.tokenizer, self.torch = model, tokenizer, torch
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def start(self, input_ids: Any) -> tuple[Any, Any]:
        """(log-probabilities of the next token, the cache) after ``input_ids`` (1 x n)."""
        out = self.model(input_ids=input_ids, use_cache=True)
        cache = getattr(out, "cache", None) or out.past_key_values
        return out.logits[0, -1].float().log_softmax(-1), cache

    def score(
        self, start: tuple[Any, Any], options: list[list[int]], closers: list[int]
    ) -> list[float]:
        """The log-probability of each option (token ids, none empty), then a closer."""
        import copy

        torch = self.torch
        first, cache = start
        device = first.device
        width = max(len(o) for o in options)
        closer = torch.tensor(closers, device=device)
        # about 64 MB of log-probabilities at a time
        chunk = max(1, (1 << 24) // (width * first.shape[-1]))
        scores: list[float] = []
        for at in range(0, len(options), chunk):
            part = options[at : at + chunk]
            past = copy.deepcopy(cache)
            past.batch_repeat_interleave(len(part))
            # shorter options are padded at the end: causal attention keeps the padding
            # out of the positions that are read
            ids = torch.tensor([o + [o[-1]] * (width - len(o)) for o in part], device=device)
            mask = torch.ones(
                (len(part), past.get_seq_length() + width), dtype=torch.long, device=device
            )
            out = self.model(input_ids=ids, attention_mask=mask, **{self._cache_arg: past})
            logp = out.logits.float().log_softmax(-1)
            for j, o in enumerate(part):
                n = len(o)
                total = first[o[0]] + logp[j, n - 1, closer].logsumexp(-1)
                if n > 1:
                    total = total + logp[j, torch.arange(n - 1, device=device), ids[j, 1:n]].sum()
                scores.append(float(total))
        return scores

    def sums(self, texts: list[tuple[list[int], list[int]]]) -> list[float]:
        """For each (context, continuation) pair of token-id lists, the log-probability
        of the continuation after the context: one batched forward pass."""
        torch = self.torch
        device = self.model.device
        out = []
        for at in range(0, len(texts), 8):  # a bounded batch: many tools, long prompts
            part = texts[at : at + 8]
            rows = [c + t for c, t in part]
            width = max(len(r) for r in rows)
            ids = torch.tensor([r + [r[-1]] * (width - len(r)) for r in rows], device=device)
            mask = torch.tensor(
                [[1] * len(r) + [0] * (width - len(r)) for r in rows],
                dtype=torch.long,
                device=device,
            )
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            for j, (context, cont) in enumerate(part):
                span = range(len(context) - 1, len(context) + len(cont) - 1)
                logp = logits[j, span.start : span.stop].float().log_softmax(-1)
                want = ids[j, span.start + 1 : span.stop + 1]
                out.append(float(logp.gather(1, want[:, None]).sum()))
        return out


#: the relevance check (``relevance``): how many nats more likely the user's message must
#: become with a tool listed alone, for that tool to replace the model's own pick
RELEVANT_NATS = 3.0
#: ... and the least evidence for a call (the log-probability of its head plus its tool's
#: gain, in nats) below which the reply is a direct answer instead; both were chosen on
#: training-split dialogues (``benchmarks/relevance_sweep.py --split train --seed 999``),
#: not on the held-out ones
CALL_EVIDENCE = -3.0


class RelevanceCheck:
    """Which listed tool, if any, a reply's tool call should name, weighed two ways:

    - directly: the model's log-probability of the call's head naming each tool;
    - by a noisy channel: how much more likely the user's message is when the system
      prompt lists that tool alone than when it lists none (its gain, in nats).

    The model's own pick (the likeliest head) stands unless another tool's head plus gain
    is higher and its gain is at least ``RELEVANT_NATS``. The chosen tool's head plus gain
    is the evidence for the call: below ``CALL_EVIDENCE`` (the model is unsure of the name
    and the message fits the prompt no better with that tool, or it is sure but the
    message fits clearly worse) the reply becomes a direct answer.
    """

    def __init__(
        self,
        look: Lookahead,
        names: list[str],
        channel: list[tuple[list[int], list[int]]],
    ) -> None:
        self.look, self.names, self.channel = look, names, channel

    def decide(self, input_ids: Any, closers: list[int]) -> str | None:
        from qwen_agent.formats.guard import CALL_HEAD

        look = self.look
        start = look.start(input_ids)
        heads = [look.encode(CALL_HEAD + name) for name in self.names]
        direct = look.score(start, heads, closers)
        base, *alone = look.sums(self.channel)
        picked = pick(direct, [a - base for a in alone])
        return None if picked is None else self.names[picked]


def pick(
    direct: list[float],
    gains: list[float],
    relevant: float = RELEVANT_NATS,
    evidence: float = CALL_EVIDENCE,
) -> int | None:
    """The relevance check's rule (see :class:`RelevanceCheck`): the index of the tool to
    call, from each tool's direct log-probability and gain, or None for no call
    (``benchmarks/relevance_sweep.py`` replays it with other thresholds)."""
    n = range(len(direct))
    own = max(n, key=direct.__getitem__)
    best = max(n, key=lambda i: direct[i] + gains[i])
    chosen = best if best != own and gains[best] >= relevant else own
    return None if direct[chosen] + gains[chosen] < evidence else chosen


def answer_source(request: Any) -> str:
    """For a reply after tool results: the results, then the question they answer (from
    the request's :class:`~qwen_agent.llm.TurnContext`); else empty."""
    ctx = request.context
    if ctx is None or not ctx.results:
        return ""
    return "\n".join([*ctx.results, ctx.question])


def copy_source(request: Any) -> str:
    """What a string argument may copy: the results the reply answers, else the question
    (the last user message of a request that carries no context)."""
    ctx = request.context
    if ctx is not None:
        return "\n".join(ctx.results) if ctx.results else ctx.question
    users = [m.text for m in request.messages if m.role == "user"]
    return users[-1] if users else ""


def tool_variants(request: Any) -> list[tuple[str | None, str]] | None:
    """The relevance check's system prompts, written by the request's format from its
    data: no tool listed (an empty list), then each of the constraint's tools alone, as
    ``(None, prompt)``, ``(name, prompt)``, ...; None when the request has no format,
    context or constraint, or the format lists tools in some other way."""
    from qwen_agent.formats import get_format

    ctx, constraint = request.context, request.constraint
    if request.format is None or ctx is None or constraint is None:
        return None
    fmt = get_format(request.format)
    out: list[tuple[str | None, str]] = []
    for spec in constraint.tools:
        out.append((spec.name, fmt.system_prompt([spec], ctx.instructions)))
    if not out:
        return None
    line = json.dumps(
        {"type": "function", "function": constraint.tools[0].as_dict()}, ensure_ascii=False
    )
    alone = f"<tools>\n{line}\n</tools>"
    if alone not in out[0][1]:
        return None
    return [(None, out[0][1].replace(alone, "<tools>\n</tools>")), *out]
