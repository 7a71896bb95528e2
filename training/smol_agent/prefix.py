"""Shared-prefix training: one system prompt and tool list run once for a whole group.

A tool-use dialogue is mostly its system prompt (the tool list); the assistant tokens that
carry the loss are a few dozen. So a group of requests that share one prefix runs the
prefix once, keeps its keys and values, and runs every request against them. The
gradient is exact, not an approximation: each layer's prefix keys and values become leaf
tensors, every chunk of requests attends to them (expanded over the chunk as a view) and
adds its gradient into the leaves, and one final backward pass sends the summed gradient
through the prefix. Memory is bounded by the chunk, not the group.

Pitfalls this code avoids (each silently wrong, none raises): the attention mask must
cover prefix and suffix, shape (B, P + L); position ids continue at P; the prefix must not
be detached without this final backward pass (it carries most of the gradient into the
layers that see the tools). ``TRANSFORMERS_SDPA_FORCE_GQA=1`` keeps SDPA from copying the
3 key/value heads out to all 9 query heads (same result, less memory and time).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache

IGNORE = -100


@dataclass
class Example:
    ids: list[int]  # the suffix tokens (after the shared prefix)
    labels: list[int]  # the token itself where it carries loss, else IGNORE
    #: each label's weight in the loss (None: 1 everywhere)
    weights: list[float] | None = None

    @property
    def n_loss(self) -> int:
        return sum(1 for t in self.labels[1:] if t != IGNORE)

    @property
    def loss_weight(self) -> float:
        """The summed weight of the tokens that carry loss (``n_loss`` when unweighted)."""
        if self.weights is None:
            return float(self.n_loss)
        pairs = zip(self.labels[1:], self.weights[1:], strict=True)
        return sum(w for t, w in pairs if t != IGNORE)


def decoder_parts(model) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The decoder stack and the output head, through a peft wrapper if there is one."""
    inner = model
    while not hasattr(inner, "lm_head") and hasattr(inner, "base_model"):
        inner = inner.base_model
    if hasattr(inner, "model") and hasattr(inner.model, "lm_head"):
        inner = inner.model
    return inner.model, inner.lm_head


def group_backward(
    model,
    prefix: list[int],
    examples: list[Example],
    scale: float,
    chunk: int = 8,
    pad_id: int = 0,
    through_prefix: bool = True,
) -> float:
    """Forward and backward for one group; adds ``scale * sum of token losses`` gradients
    into the model's trainable parameters and returns the unscaled loss sum.
    ``through_prefix=False`` drops the prefix's share (wrong; it shows what that share is)."""
    decoder, head = decoder_parts(model)
    device = next(model.parameters()).device
    P = len(prefix)
    out = decoder(input_ids=torch.tensor([prefix], device=device), use_cache=True)
    cache = out.past_key_values
    roots, leaves, kv = [], [], []
    for layer in cache.layers:
        pair = []
        for t in (layer.keys, layer.values):
            if t.requires_grad:
                leaf = t.detach().requires_grad_(True)
                roots.append(t)
                leaves.append(leaf)
                t = leaf
            pair.append(t)
        kv.append(pair)
    del out, cache

    order = sorted(range(len(examples)), key=lambda i: len(examples[i].ids))
    total = 0.0
    for start in range(0, len(order), chunk):
        part = [examples[i] for i in order[start : start + chunk]]
        B, L = len(part), max(len(e.ids) for e in part)
        ids = torch.full((B, L), pad_id, dtype=torch.long, device=device)
        target = torch.full((B, L), IGNORE, dtype=torch.long, device=device)
        weight = torch.ones((B, L), device=device)
        mask = torch.zeros((B, P + L), dtype=torch.long, device=device)
        mask[:, :P] = 1
        for b, e in enumerate(part):
            n = len(e.ids)
            ids[b, :n] = torch.tensor(e.ids, device=device)
            target[b, : n - 1] = torch.tensor(e.labels[1:], device=device)
            if e.weights is not None:
                weight[b, : n - 1] = torch.tensor(e.weights[1:], device=device)
            mask[b, P : P + n] = 1
        pos = torch.arange(P, P + L, device=device).unsqueeze(0).expand(B, L)
        chunk_cache = DynamicCache(
            ddp_cache_data=[(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)) for k, v in kv]
        )
        hidden = decoder(
            input_ids=ids, attention_mask=mask, position_ids=pos, cache=chunk_cache, use_cache=True
        ).last_hidden_state
        if all(e.weights is None for e in part):
            weight = None
        total += _loss_backward(head, hidden, target, scale, weight)
        del hidden, chunk_cache
    grads = [(r, leaf.grad) for r, leaf in zip(roots, leaves, strict=True) if leaf.grad is not None]
    if grads and through_prefix:
        torch.autograd.backward([r for r, _ in grads], grad_tensors=[g for _, g in grads])
    return total


def full_backward(
    model, prefix: list[int], examples: list[Example], scale: float, pad_id: int = 0
) -> float:
    """The reference: each whole dialogue (prefix + suffix) on its own. Same gradients as
    ``group_backward``; used by the tests and the throughput benchmark."""
    decoder, head = decoder_parts(model)
    device = next(model.parameters()).device
    total = 0.0
    for e in examples:
        ids = torch.tensor([prefix + e.ids], device=device)
        labels = [IGNORE] * len(prefix) + e.labels
        target = torch.tensor(labels[1:], device=device)
        weight = None
        if e.weights is not None:
            weight = torch.tensor(([1.0] * len(prefix) + e.weights)[1:], device=device)
        hidden = decoder(input_ids=ids).last_hidden_state[0, :-1]
        total += _loss_backward(head, hidden, target, scale, weight)
    return total


def _loss_backward(head, hidden, target, scale: float, weight=None) -> float:
    """Backward of ``scale`` times the summed (weighted) token loss, with logits only where
    the loss is; returns the unscaled sum (0 when no position carries loss)."""
    keep = target != IGNORE
    if not keep.any():
        return 0.0
    logits = head(hidden[keep]).float()
    if weight is None:
        loss = torch.nn.functional.cross_entropy(logits, target[keep], reduction="sum")
    else:
        each = torch.nn.functional.cross_entropy(logits, target[keep], reduction="none")
        loss = (each * weight[keep]).sum()
    (loss * scale).backward()
    return loss.item()
