"""The exception tree of qwen_agent.

Every error the framework raises derives from :class:`QwenAgentError`::

    QwenAgentError
    ├── ConfigError            bad configuration or argument given by the user
    ├── RegistryError          a name is unknown, or registered twice
    ├── ToolError              a tool could not be defined or called
    │   ├── ToolDefinitionError    a function cannot become a tool (bad signature, schema)
    │   ├── ToolCallError          a call names an unknown tool or has invalid arguments
    │   ├── DocumentError          a knowledge file cannot be indexed (retrieval; defined in
    │   │                          qwen_agent.tools.retrieval.parsers)
    │   └── MCPServerError         an MCP server cannot start, died or timed out (defined in
    │                              qwen_agent.tools.mcp.config)
    ├── BackendError           the model backend failed (``status_code``, ``retry_after``
    │   │                      where the backend knows them)
    │   ├── BackendConnectionError cannot reach the server / load the model
    │   │   └── BackendTimeoutError    the server did not answer in time
    │   └── BackendResponseError   the server answered with an error or garbage
    │       ├── RateLimitError         the server said 429: too many requests
    │       └── ContextWindowError     the prompt and max_tokens do not fit the window
    ├── SandboxError           the code sandbox could not run or contain code
    ├── RunCancelled           an agent run was cancelled (its client left)
    └── WireError              a request ``qwen-agent serve`` answers with an OpenAI error
                               body (``status``, ``param``, ``code``; defined in
                               qwen_agent.serving.wire)

A malformed tool call written by the model is *not* raised to the user: the agent turns
it into an observation for the model. These classes carry a message that says what to do.
"""

from __future__ import annotations

__all__ = [
    "QwenAgentError",
    "ConfigError",
    "RegistryError",
    "ToolError",
    "ToolDefinitionError",
    "ToolCallError",
    "BackendError",
    "BackendConnectionError",
    "BackendResponseError",
    "BackendTimeoutError",
    "RateLimitError",
    "ContextWindowError",
    "SandboxError",
    "RunCancelled",
]


class QwenAgentError(Exception):
    """Root of every error raised by qwen_agent."""


class ConfigError(QwenAgentError, ValueError):
    """A configuration value or argument is invalid."""


class RegistryError(QwenAgentError, KeyError):
    """A registry lookup failed, or a name was registered twice."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ToolError(QwenAgentError):
    """Base class of tool errors."""


class ToolDefinitionError(ToolError, TypeError):
    """A function or class cannot be turned into a tool."""


class ToolCallError(ToolError):
    """A tool call is invalid: unknown tool name or arguments that fail the schema."""


class BackendError(QwenAgentError):
    """The LLM backend failed. ``status_code`` is the HTTP status a server answered (None
    when there was no answer), ``retry_after`` the seconds it asked the client to wait."""

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


class BackendConnectionError(BackendError):
    """The backend cannot be reached or the model cannot be loaded."""


class BackendTimeoutError(BackendConnectionError):
    """The backend did not answer (or stream on) within its timeout."""


class BackendResponseError(BackendError):
    """The backend answered with an error status or an unreadable response."""


class RateLimitError(BackendResponseError):
    """The backend answered 429 (too many requests); ``retry_after`` says when to retry,
    where it said."""


class ContextWindowError(BackendResponseError):
    """The prompt and ``max_tokens`` do not fit the model's context window. ``param`` is
    what to change: ``"messages"`` (the prompt alone is too long) or ``"max_tokens"``."""

    def __init__(
        self, message: str, param: str = "messages", *, status_code: int | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.param = param


class SandboxError(QwenAgentError):
    """Sandboxed code execution is unavailable or failed."""


class RunCancelled(QwenAgentError):
    """An agent run was cancelled before it ended (the client that asked for it left)."""
