"""``qwen-agent serve``: the OpenAI API with function calling over any backend.

:mod:`qwen_agent.serving.wire` is the wire format (light: pydantic only);
:mod:`qwen_agent.serving.app` the FastAPI app and :mod:`qwen_agent.serving.server` its
:class:`~qwen_agent.serving.server.Server`, which need the ``[serve]`` extra (fastapi,
uvicorn, prometheus-client).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Server", "ServeConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from qwen_agent.serving import app, server

        return getattr(server if name == "Server" else app, name)
    raise AttributeError(name)
