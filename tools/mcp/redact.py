"""Secrets out of what MCP errors and logs say about a server.

Errors that reach the model or a served client name only the server; the host's log gets
the details (command line or URL, the end of its stderr, the transport's error) through
:class:`Redactor`, which hides: URL userinfo and query values, the values of arguments
after flags like ``--token`` / ``--api-key`` (or ``--token=...``, ``API_KEY=...``), arguments
that look like well-known tokens (``sk-...``, ``ghp_...``, ``Bearer ...``), env values and
header values, wherever they appear in the text.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["MASK", "Redactor", "redact_url", "redact_args"]

MASK = "***"
#: a flag or key whose value is a secret: --token, --api-key, API_KEY, password, ...
_SECRET_NAME = re.compile(
    r"(token|key|secret|passw(or)?d|pwd|auth|credential|bearer|cookie|session|signature)",
    re.IGNORECASE,
)
_FLAG = re.compile(r"^--?[A-Za-z][\w.-]*$")
_ASSIGN = re.compile(r"^(--?)?([A-Za-z_][\w.-]*)=(.+)$", re.DOTALL)
#: values that are tokens whatever flag they follow
_TOKEN = re.compile(
    r"^(Bearer\s+\S+|Basic\s+\S+|sk-[\w-]{8,}|gh[pousr]_\w{8,}|github_pat_\w{8,}|"
    r"xox[abposr]-[\w-]{8,}|glpat-[\w-]{8,}|AKIA[0-9A-Z]{16}|AIza[\w-]{20,}|hf_\w{8,})$"
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
#: secrets shorter than this are not searched for in free text (they would mask common words)
_MIN_SECRET = 4


def redact_url(url: str) -> str:
    """``url`` without its userinfo and query values: ``https://***@host/p?key=***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = MASK + "@" + netloc.rpartition("@")[2]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = "&".join(f"{k}={MASK}" if v else k for k, v in pairs) or MASK
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment and MASK))
    except ValueError:  # not a URL after all: hide it whole
        return MASK


def _redacted(args: Iterable[str]) -> list[tuple[str, set[str]]]:
    """Each argument as shown, with the secrets it holds."""
    out: list[tuple[str, set[str]]] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("-"):
            out.append((MASK, {arg, *arg.split()[1:]}))
            hide_next = False
            continue
        hide_next = False
        assign = _ASSIGN.match(arg)
        if assign and _SECRET_NAME.search(assign.group(2)):
            out.append((arg[: arg.index("=") + 1] + MASK, {assign.group(3)}))
        elif _FLAG.match(arg) and _SECRET_NAME.search(arg):
            out.append((arg, set()))
            hide_next = True
        elif _TOKEN.match(arg.strip()):
            out.append((MASK, {arg, *arg.split()[1:]}))  # and the token of "Bearer <token>"
        else:
            shown = _URL.sub(lambda m: redact_url(m.group(0)), arg)
            out.append((shown, _secrets_of_urls(arg)))
    return out


def redact_args(args: Iterable[str]) -> list[str]:
    """The arguments with secret values masked (see the module docstring)."""
    return [shown for shown, _ in _redacted(args)]


def _secrets_of_urls(text: str) -> set[str]:
    secrets: set[str] = set()
    for match in _URL.finditer(text):
        try:
            parts = urlsplit(match.group(0))
        except ValueError:
            continue
        userinfo = parts.netloc.rpartition("@")[0]
        secrets.update(s for s in (userinfo, *userinfo.split(":", 1)) if s)
        secrets.update(v for _, v in parse_qsl(parts.query) if v)
    return secrets


class Redactor:
    """Masks one server's secrets in text meant for the host's log."""

    def __init__(
        self,
        *,
        command: str | None = None,
        args: Iterable[str] = (),
        url: str | None = None,
        env: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.command, self.args, self.url = command, list(args), url
        self.env_keys = sorted(env or {})
        secrets = {s for _, found in _redacted(self.args) for s in found}
        secrets.update((env or {}).values())
        for value in (headers or {}).values():
            secrets.add(value)
            secrets.update(value.split()[1:])  # "Bearer <token>"
        if url:
            secrets.update(_secrets_of_urls(url))
        found = {s.strip() for s in secrets}
        self._secrets = sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)

    def describe(self) -> str:
        """The server's command line (and env names) or URL, secrets masked."""
        if self.url is not None:
            return redact_url(self.url)
        shown = shlex.join([self.command or "", *redact_args(self.args)])[:300]
        if self.env_keys:
            shown += " (env: " + ", ".join(f"{k}={MASK}" for k in self.env_keys) + ")"
        return shown

    def text(self, text: str) -> str:
        """``text`` with this server's secrets and any URL's userinfo/query values masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _URL.sub(lambda m: redact_url(m.group(0)), text)
