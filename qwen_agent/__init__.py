"""qwen_agent: an agent and tool-use framework around Qwen models.

Quick start::

    from qwen_agent import Agent, tool

    @tool
    def add(a: int, b: int) -> int:
        '''Add two integers.'''
        return a + b

    agent = Agent(llm={"backend": "openai", "model": "qwen2.5-7b-instruct",
                       "base_url": "http://127.0.0.1:8000/v1"}, tools=[add])
    answer, messages = agent.chat("What is 2 + 40?")
"""

from qwen_agent.agent import Agent, ChatResult
from qwen_agent.errors import (
    BackendConnectionError,
    BackendError,
    BackendResponseError,
    ConfigError,
    ContextWindowError,
    QwenAgentError,
    RegistryError,
    SandboxError,
    ToolCallError,
    ToolDefinitionError,
    ToolError,
)
from qwen_agent.events import (
    CallParseError,
    Event,
    FinalEvent,
    HistoryTrimmed,
    ReasoningDelta,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from qwen_agent.formats import ParsedOutput, ToolFormat, get_format, register_format
from qwen_agent.llm import (
    ChatModel,
    Delta,
    GenerationConfig,
    LLMConfig,
    ModelRequest,
    Usage,
    get_chat_model,
    register_backend,
)
from qwen_agent.messages import FileItem, ImageItem, Message, TextItem, ToolCall, ToolResult
from qwen_agent.tool import Tool, Toolset, ToolSpec, get_tool, register_tool, tool

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "AgentConfig":  # imported on first use: most programs never need it
        from qwen_agent.config import AgentConfig

        return AgentConfig
    raise AttributeError(f"module 'qwen_agent' has no attribute {name!r}")


__all__ = [
    "Agent",
    "AgentConfig",
    "ChatResult",
    "tool",
    "Tool",
    "Toolset",
    "ToolSpec",
    "register_tool",
    "get_tool",
    "Message",
    "TextItem",
    "ImageItem",
    "FileItem",
    "ToolCall",
    "ToolResult",
    "ChatModel",
    "Delta",
    "GenerationConfig",
    "LLMConfig",
    "ModelRequest",
    "Usage",
    "get_chat_model",
    "register_backend",
    "ToolFormat",
    "ParsedOutput",
    "get_format",
    "register_format",
    "Event",
    "TextDelta",
    "ReasoningDelta",
    "ToolCallEvent",
    "CallParseError",
    "ToolResultEvent",
    "HistoryTrimmed",
    "FinalEvent",
    "QwenAgentError",
    "ConfigError",
    "RegistryError",
    "ToolError",
    "ToolDefinitionError",
    "ToolCallError",
    "BackendError",
    "BackendConnectionError",
    "BackendResponseError",
    "ContextWindowError",
    "SandboxError",
    "__version__",
]
