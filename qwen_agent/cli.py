"""The ``qwen-agent`` command.

    qwen-agent chat "What is 12 * 34?" --tool examples/tools.py:multiply  # bundled model
    qwen-agent chat "..." --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    qwen-agent chat --config agent.toml            # interactive when no question is given

A config file (TOML or JSON) may hold ``llm`` (an LLMConfig table), ``tools`` (a list of
``"module:attr"`` or registered names), ``format``, ``instructions`` and ``max_steps``;
command-line flags override it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from qwen_agent.errors import ConfigError, QwenAgentError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwen-agent", description="Qwen agents from the shell.")
    sub = parser.add_subparsers(dest="command", required=True)
    chat = sub.add_parser("chat", help="ask a question (or chat interactively) with tools")
    chat.add_argument("question", nargs="?", help="one-shot question; omit for a chat session")
    chat.add_argument("--config", type=Path, help="TOML or JSON file with agent settings")
    chat.add_argument(
        "--backend",
        help="openai or transformers (default: openai with --base-url, else transformers)",
    )
    chat.add_argument(
        "--model",
        help="model directory, or the model name on the server (default: the bundled tiny model)",
    )
    chat.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    chat.add_argument("--api-key", help="API key (default: $OPENAI_API_KEY)")
    chat.add_argument("--mode", choices=["chat", "completion"], help="server endpoint to use")
    chat.add_argument("--format", choices=["hermes", "react"], help="tool-call format")
    chat.add_argument(
        "--tool",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="add a tool (a @tool function, Tool class or registered name)",
    )
    chat.add_argument("--instructions", help="system instructions")
    chat.add_argument("--max-steps", type=int, help="most model calls per question")
    chat.add_argument("--max-tokens", type=int, help="most tokens per model call")
    chat.add_argument("--temperature", type=float, help="sampling temperature")
    chat.add_argument("--quiet", action="store_true", help="do not show tool calls on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "chat":
            return _chat(args)
    except ConfigError as exc:
        print(f"qwen-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    except QwenAgentError as exc:
        print(f"qwen-agent: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    return 2


def _chat(args: argparse.Namespace) -> int:
    from qwen_agent.agent import Agent

    if not args.quiet:  # show model loading progress
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("  %(message)s"))
        logging.getLogger("qwen_agent").addHandler(handler)
        logging.getLogger("qwen_agent").setLevel(logging.INFO)

    settings = _load_config(args.config) if args.config else {}
    llm = dict(settings.get("llm", {}))
    for key in ("backend", "model", "base_url", "api_key", "mode"):
        value = getattr(args, key)
        if value is not None:
            llm[key] = value
    generation = dict(llm.pop("generation", {}))
    if args.max_tokens is not None:
        generation["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        generation["temperature"] = args.temperature
    if generation:
        llm["generation"] = generation
    specs = [*settings.get("tools", []), *args.tool]
    tools = [_load_tool(spec) for spec in specs] if specs else _default_tools()
    agent = Agent(
        llm=llm,
        tools=tools,
        instructions=args.instructions or settings.get("instructions", ""),
        format=args.format or settings.get("format", "hermes"),
        max_steps=args.max_steps or settings.get("max_steps", 8),
    )
    if args.question:
        _answer(agent, args.question, [], args.quiet, sys.stdout)
        return 0
    return _interactive(agent, args.quiet)


def _answer(agent: Any, question: str, history: list[Any], quiet: bool, out: TextIO) -> list[Any]:
    from qwen_agent.events import FinalEvent, TextDelta, ToolCallEvent, ToolResultEvent

    messages: list[Any] = history
    wrote = False
    for event in agent.run(question, history):
        if isinstance(event, TextDelta):
            out.write(event.text)
            out.flush()
            wrote = True
        elif isinstance(event, ToolCallEvent) and not quiet:
            _note(f"-> {event.call.name}({event.call.arguments_json()})", wrote, out)
            wrote = False
        elif isinstance(event, ToolResultEvent) and not quiet:
            text = event.result.text.replace("\n", " ")
            _note(f"<- {text[:200]}{'...' if len(text) > 200 else ''}", wrote, out)
        elif isinstance(event, FinalEvent):
            if event.stop_reason != "answer" or not event.message.text:
                out.write(event.message.text)
            messages = event.messages
    out.write("\n")
    out.flush()
    return messages


def _note(text: str, wrote: bool, out: TextIO) -> None:
    if wrote:
        out.write("\n")
        out.flush()
    print(f"  {text}", file=sys.stderr, flush=True)


def _interactive(agent: Any, quiet: bool) -> int:
    print(
        "qwen-agent chat: type a question; /reset clears the history, /exit quits.", file=sys.stderr
    )
    history: list[Any] = []
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        line = line.strip()
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return 0
        if line == "/reset":
            history = []
            continue
        history = _answer(agent, line, history, quiet, sys.stdout)


def _default_tools() -> list[Any]:
    """The sandboxed code interpreter when it can run here; else no tools, with a note."""
    from qwen_agent.tool import get_tool

    try:
        return [get_tool("code_interpreter")]
    except QwenAgentError as exc:
        logging.getLogger("qwen_agent").info("running without the code interpreter: %s", exc)
        return []


def _load_config(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".json":
            data = json.loads(raw)
        else:
            import tomllib

            data = tomllib.loads(raw.decode())
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ConfigError(f"config file {path} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table/object at the top")
    unknown = set(data) - {"llm", "tools", "format", "instructions", "max_steps"}
    if unknown:
        raise ConfigError(f"config file {path}: unknown keys {sorted(unknown)}")
    return data


def _load_tool(spec: str) -> Any:
    from qwen_agent.tool import TOOLS

    if ":" not in spec:
        if spec in TOOLS:
            return spec
        raise ConfigError(f"tool {spec!r}: give MODULE:ATTR or a registered tool name")
    module_name, _, attr = spec.rpartition(":")
    if module_name.endswith(".py"):
        module = _import_file(spec, Path(module_name))
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # like `python -m`: tools next to you import
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"tool {spec!r}: cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"tool {spec!r}: {module_name!r} has no {attr!r}") from None


def _import_file(spec: str, path: Path) -> Any:
    import importlib.util

    if not path.is_file():
        raise ConfigError(f"tool {spec!r}: no such file {path}")
    module_spec = importlib.util.spec_from_file_location(f"_qwen_agent_tools_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"tool {spec!r}: cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file failed: say where, not a traceback
        raise ConfigError(
            f"tool {spec!r}: {path} failed to run: {type(exc).__name__}: {exc}"
        ) from None
    return module


if __name__ == "__main__":
    sys.exit(main())
