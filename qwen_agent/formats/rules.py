"""The per-parameter limits of a JSON schema that the tool guard enforces while a value is
written: number bounds, string lengths and patterns, array sizes and enums of any JSON
scalars. Each check answers for a *prefix* (can this text still become a valid value?) and
for a finished value, so a guard can ban a token before it breaks the schema rather than
notice afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["Rule", "rule_for"]


@dataclass(frozen=True)
class Rule:
    """What a value must satisfy beyond its type."""

    lo: Fraction | None = None
    lo_strict: bool = False
    hi: Fraction | None = None
    hi_strict: bool = False
    min_len: int = 0
    max_len: int | None = None
    pattern: Any = None  # a compiled ``regex`` pattern (partial matching), when available
    max_items: int | None = None
    min_items: int = 0
    choices: tuple[str, ...] = ()  # JSON texts of the allowed values (an enum of non-strings)

    @property
    def bounded(self) -> bool:
        return self.lo is not None or self.hi is not None

    # -- numbers ------------------------------------------------------------------------
    def number_can_become_valid(self, text: str, integer: bool) -> bool:
        """Whether some number that starts with ``text`` (a valid prefix of JSON's number
        grammar) lies within the bounds."""
        if not self.bounded:
            return True
        neg = text.startswith("-")
        body = text[1:] if neg else text
        if "e" in body or "E" in body:
            return False  # an exponent is not needed for a bounded value; keep it simple
        for a, b in _magnitudes(body, integer, self._reach()):
            lo_v, hi_v = (-b, -a) if neg else (a, b)
            if self._overlaps(lo_v, hi_v):
                return True
        return False

    def number_is_valid(self, text: str) -> bool:
        if not self.bounded:
            return True
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            return False
        return self._overlaps(value, value)

    def _reach(self) -> Fraction:
        """How far from zero a value may be."""
        ends = [abs(x) for x in (self.lo, self.hi) if x is not None]
        return max(ends) if self.lo is not None and self.hi is not None else Fraction(10**18)

    def _overlaps(self, a: Fraction, b: Fraction) -> bool:
        """Whether [a, b] meets the allowed range (a strict bound leaves out its end)."""
        if self.lo is not None and (b <= self.lo if self.lo_strict else b < self.lo):
            return False
        if self.hi is not None and (a >= self.hi if self.hi_strict else a > self.hi):
            return False
        return True

    # -- strings ------------------------------------------------------------------------
    def string_can_grow(self, value: str) -> bool:
        """Whether ``value`` (a string value so far, unfinished) may still be extended to
        a valid one."""
        if self.max_len is not None and len(value) > self.max_len:
            return False
        if self.pattern is not None and value:
            try:
                return self.pattern.search(value, partial=True, timeout=0.01) is not None
            except TimeoutError:  # a pattern too costly to follow: not enforced here
                return True
        return True

    def string_is_valid(self, value: str) -> bool:
        if len(value) < self.min_len:
            return False
        if self.max_len is not None and len(value) > self.max_len:
            return False
        if self.pattern is None:
            return True
        try:
            return self.pattern.search(value, timeout=0.05) is not None
        except TimeoutError:
            return True

    # -- enums of numbers, booleans, null -------------------------------------------------
    def choice_prefix(self, text: str) -> bool:
        return any(c.startswith(text) for c in self.choices)

    def choice_done(self, text: str) -> bool:
        return text in self.choices


def _magnitudes(body: str, integer: bool, reach: Fraction):
    """The closed ranges of |value| for the numbers whose digits start with ``body``."""
    if body == "":
        yield Fraction(0), reach + 1
        return
    if "." in body:
        ip, fp = body.split(".", 1)
        start = Fraction(f"{ip}.{fp or '0'}")
        yield start, start + Fraction(1, 10 ** len(fp))
        return
    d = int(body)
    if body == "0":
        yield (Fraction(0), Fraction(0)) if integer else (Fraction(0), Fraction(1))
        return
    k = 0
    while True:
        a = Fraction(d * 10**k)
        if a > reach + 1:
            return
        b = Fraction((d + 1) * 10**k - (1 if integer else 0))
        yield (a, a) if (integer and k == 0) else (a, b)
        if not integer and k == 0:
            yield a, a + 1  # d.xxx
        k += 1


def _fraction(value: Any) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:  # a float by its shortest decimal spelling: 0.1 is 1/10, not its binary double
        return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
    except (ValueError, OverflowError, ZeroDivisionError):
        return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def rule_for(schema: Any) -> Rule | None:
    """The rule a parameter's schema sets, or None when it sets none the guard follows."""
    if not isinstance(schema, dict):
        return None
    lo, hi = _fraction(schema.get("minimum")), _fraction(schema.get("maximum"))
    lo_strict = hi_strict = False
    ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if ex_lo is True or ex_hi is True:  # draft 4: booleans beside minimum / maximum
        lo_strict, hi_strict = ex_lo is True, ex_hi is True
    else:
        if _fraction(ex_lo) is not None and (lo is None or _fraction(ex_lo) >= lo):
            lo, lo_strict = _fraction(ex_lo), True
        if _fraction(ex_hi) is not None and (hi is None or _fraction(ex_hi) <= hi):
            hi, hi_strict = _fraction(ex_hi), True
    pattern = None
    if isinstance(schema.get("pattern"), str):
        try:
            import regex  # partial matching, which the standard re lacks

            pattern = regex.compile(schema["pattern"])
        except Exception:  # no regex module, or a pattern it cannot read: not enforced
            pattern = None
    choices: tuple[str, ...] = ()
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and not all(isinstance(v, str) for v in enum):
        if all(v is None or isinstance(v, (bool, int, float, str)) for v in enum):
            choices = tuple(json.dumps(v, ensure_ascii=False) for v in enum)
    rule = Rule(
        lo=lo,
        lo_strict=lo_strict,
        hi=hi,
        hi_strict=hi_strict,
        min_len=_count(schema.get("minLength")) or 0,
        max_len=_count(schema.get("maxLength")),
        pattern=pattern,
        max_items=_count(schema.get("maxItems")),
        min_items=_count(schema.get("minItems")) or 0,
        choices=choices,
    )
    return None if rule == Rule() else rule
