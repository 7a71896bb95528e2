"""The prompt side of a local backend, shared by the transformers and vLLM backends: a
conversation rendered with the tokenizer's chat template (ChatML when it has none), its
token ids, and the oldest exchanges left out when the prompt and the reply would not fit
the context window."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from qwen_agent.chatml import neutralize, render_chatml
from qwen_agent.errors import ConfigError, ContextWindowError
from qwen_agent.llm import Trimmed
from qwen_agent.messages import Message

__all__ = ["ChatPrompt", "special_tokens"]

log = logging.getLogger("qwen_agent.backends")


class ChatPrompt:
    """Mixed into a backend that sets ``tokenizer`` (a transformers tokenizer),
    ``max_context``, ``model_name`` and ``_specials`` (:func:`qwen_agent.chatml.special_pattern`
    of its special tokens)."""

    tokenizer: Any
    max_context: int
    model_name: str
    _specials: Any

    def render(self, messages: list[Message], thinking: bool | None = None) -> str:
        """The prompt text: the tokenizer's chat template (ChatML when it has none);
        ``thinking`` is passed to it as ``enable_thinking`` (Qwen3) when set."""
        if not messages:
            raise ConfigError("no messages to send to the model")
        if not getattr(self.tokenizer, "chat_template", None):
            return render_chatml(messages, pattern=self._specials)
        cont = messages[-1].role == "assistant"
        # special tokens come only from the template: in content they are plain text
        dicts = [{"role": m.role, "content": neutralize(m.text, self._specials)} for m in messages]
        extra = {} if thinking is None else {"enable_thinking": thinking}
        return self.tokenizer.apply_chat_template(
            dicts,
            tokenize=False,
            add_generation_prompt=not cont,
            continue_final_message=cont,
            **extra,
        )

    def count_tokens(self, messages: list[Message]) -> int:
        """Tokens the prompt for ``messages`` takes."""
        return len(self._encode(self.render(messages)))

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _fit(
        self,
        messages: list[Message],
        max_new: int,
        drop: bool = True,
        thinking: bool | None = None,
        least: int | None = None,
        exchanges: tuple[int, ...] | None = None,
    ) -> tuple[list[int], bool, Trimmed | None, int]:
        """Prompt ids that leave ``max_new`` tokens of the window for the reply, whether the
        rendered prompt opened ``<think>`` for the reply, what was left out to fit, and the
        reply's budget. With ``least`` (the request set no ``max_tokens``), the reply may
        take less, down to ``least`` tokens, before anything is left out.

        With ``drop``, the oldest whole exchanges go first (a question and everything up
        to the next one: ``exchanges`` says where each begins, else every user message
        does); the current exchange (the last question and the calls its tool results
        answer) always stays. A prompt that cannot fit is a
        :class:`ContextWindowError` naming the sizes, before any generation."""
        msgs = list(messages)
        starts = (
            list(exchanges)
            if exchanges is not None
            else [i for i, m in enumerate(msgs) if m.role == "user"]
        )
        text = self.render(msgs, thinking)
        ids = self._encode(text)
        first_len = len(ids)
        if least is not None and len(ids) + max_new > self.max_context:
            max_new = max(least, self.max_context - len(ids))
        budget = self.max_context - max_new
        dropped_exchanges = dropped_msgs = 0
        while len(ids) > budget:
            span = _oldest_exchange(msgs, starts) if drop else None
            if span is None:
                self._too_long(len(ids), first_len, max_new, dropped_exchanges)
            del msgs[span[0] : span[1]]
            cut = span[1] - span[0]
            starts = [i - cut for i in starts if i >= span[1]]
            dropped_exchanges += 1
            dropped_msgs += span[1] - span[0]
            text = self.render(msgs, thinking)
            ids = self._encode(text)
        # the template opened the reasoning in the prompt (Qwen3-Thinking-2507, QwQ, ...)
        opened = msgs[-1].role != "assistant" and text.rstrip().endswith("<think>")
        trimmed = None
        if dropped_exchanges:
            log.warning(
                "left out the %d oldest exchange(s) (%d messages) so the prompt fits the "
                "%d-token context window with %d tokens for the reply",
                dropped_exchanges,
                dropped_msgs,
                self.max_context,
                max_new,
            )
            trimmed = Trimmed(dropped_exchanges, dropped_msgs, first_len, max_new, self.max_context)
        return ids, opened, trimmed, max_new

    def _too_long(self, n: int, first: int, max_new: int, dropped: int) -> NoReturn:
        left = f" after leaving out {dropped} earlier exchange(s)" if dropped else ""
        if n < self.max_context:
            raise ContextWindowError(
                f"the prompt takes {n} tokens{left} and max_tokens={max_new} more, past the "
                f"{self.max_context}-token context window of {self.model_name}; ask for at "
                f"most {self.max_context - n} tokens, or shorten the prompt",
                param="max_tokens",
            )
        raise ContextWindowError(
            f"the prompt takes {n} tokens{left} (the whole conversation {first}), but the "
            f"context window of {self.model_name} is {self.max_context} tokens with "
            f"{max_new} kept for the reply; shorten the question, the instructions or the "
            "tool descriptions, or list fewer tools"
        )


def special_tokens(tokenizer: Any) -> list[str]:
    """The tokenizer's special tokens (not the merely added ones, such as a call's tag)."""
    found = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for tok in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(tok, "special", False):
            found.add(str(tok.content))
    return sorted(found)


def _oldest_exchange(msgs: list[Message], starts: list[int]) -> tuple[int, int] | None:
    """The slice of the oldest exchange before the current one: from the first message
    after the system prompt to the next question (``starts``: where each question is).
    None when only the current exchange is left."""
    if not starts:
        return None
    begin = next((i for i, m in enumerate(msgs) if m.role != "system"), len(msgs))
    nxt = [q for q in starts if q > begin]
    if begin >= starts[-1] or not nxt:
        return None
    return begin, nxt[0]
