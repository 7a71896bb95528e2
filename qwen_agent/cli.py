"""The ``qwen-agent`` command.

    qwen-agent chat "What is 12 * 34?" --tool examples/tools.py:multiply  # bundled model
    qwen-agent chat "..." --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    qwen-agent chat --config agent.toml            # interactive when no question is given
    qwen-agent serve --port 8000                   # the OpenAI API on the bundled model
    qwen-agent serve --model /models/Qwen2.5-7B-Instruct --config agent.toml

A config file (TOML or JSON, see :class:`~qwen_agent.config.AgentConfig`) may hold
``name``, ``llm`` (an LLMConfig table), ``tools`` (a list of ``"module:attr"`` or registered
names), ``format``, ``instructions`` and ``max_steps``; command-line flags override it.
"""

from __future__ import annotations

import argparse
import logging
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
        help="openai, transformers or vllm (default: openai with --base-url, else transformers)",
    )
    chat.add_argument(
        "--model",
        help="model directory, a bundled model (qwen-smol-agent, qwen-tiny-agent), or the model "
        "name on the server (default: the bundled qwen-smol-agent)",
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
    chat.add_argument(
        "--knowledge",
        action="append",
        default=[],
        metavar="PATH",
        help="add the retrieval tool over these files or folders (txt, md, html, pdf, docx)",
    )
    chat.add_argument(
        "--mcp-config",
        type=Path,
        metavar="FILE",
        help='MCP servers as JSON ({"mcpServers": {...}}, as Claude Desktop writes it)',
    )
    chat.add_argument("--instructions", help="system instructions")
    chat.add_argument("--max-steps", type=int, help="most model calls per question")
    chat.add_argument("--max-tokens", type=int, help="most tokens per model call")
    chat.add_argument("--temperature", type=float, help="sampling temperature")
    chat.add_argument("--quiet", action="store_true", help="do not show tool calls on stderr")
    _serve_parser(sub)
    _fabric_parser(sub)
    return parser


def _fabric_parser(sub: Any) -> None:
    fabric = sub.add_parser(
        "fabric", help="AgentFabric: build an agent by chatting, try it, keep it (a web app)"
    )
    fabric.add_argument("--model", help="model directory, or the model name on --base-url")
    fabric.add_argument("--backend", help="openai, transformers or vllm (default: as for chat)")
    fabric.add_argument("--base-url", help="an OpenAI-compatible server to run the agents on")
    fabric.add_argument("--api-key", help="the key for --base-url")
    fabric.add_argument("--format", choices=["hermes", "react"], default="hermes")
    fabric.add_argument(
        "--data-dir",
        type=Path,
        help="where agents and files are kept (default: $QWEN_FABRIC_DATA or "
        "~/.local/share/qwen-agent/fabric)",
    )
    fabric.add_argument(
        "--db", help="a database URL (postgresql://...) shared by several app processes"
    )
    fabric.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    fabric.add_argument("--port", type=int, default=7860)
    fabric.add_argument(
        "--auth",
        action="append",
        default=[],
        metavar="USER:PASSWORD",
        help="turn login on; may be repeated (agents then belong to who made them)",
    )
    fabric.add_argument(
        "--user-header",
        help="take the user's name from this header, set by a trusted proxy in front",
    )


def _serve_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve a model, and agents, over the OpenAI API")
    serve.add_argument(
        "--model",
        help="model directory, or the model name on --base-url (default: the bundled model)",
    )
    serve.add_argument("--backend", help="openai, transformers or vllm (default: as for chat)")
    serve.add_argument("--base-url", help="serve a model from this OpenAI-compatible server")
    serve.add_argument("--mode", choices=["chat", "completion"], help="endpoint of --base-url")
    serve.add_argument(
        "--native-tools",
        action="store_true",
        help="--base-url parses tool calls itself (vLLM --tool-call-parser, Ollama, DashScope)",
    )
    serve.add_argument(
        "--served-model-name", default="qwen-agent", help="the model's name in requests"
    )
    serve.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        help="an agent file (TOML or JSON), served as model agent:NAME; may be repeated",
    )
    serve.add_argument(
        "--store",
        help="also serve the agents published in AgentFabric: its data folder or database URL",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--api-key",
        action="append",
        help="require this key as 'Authorization: Bearer KEY'; repeat for several callers, "
        "whose agent conversations are kept apart (default: $QWEN_AGENT_API_KEY, "
        "comma-separated)",
    )
    serve.add_argument("--format", choices=["hermes", "react"], help="the model's tool format")
    serve.add_argument("--max-concurrency", type=int, help="generations at once per model")
    serve.add_argument("--max-queue", type=int, help="requests waiting per model (then 429)")
    serve.add_argument("--queue-timeout", type=float, help="seconds a request may wait (then 503)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "chat":
            return _chat(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "fabric":
            return _fabric(args)
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

    from qwen_agent.config import AgentConfig

    config = AgentConfig.load(args.config) if args.config else AgentConfig()
    settings = config.model_dump(exclude_unset=True)
    llm = dict(settings.get("llm") or {})
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
    agent = Agent(  # a failure here closes the tools already started
        llm=llm,
        tools=_chat_tools(config, args),
        instructions=args.instructions or settings.get("instructions", ""),
        format=args.format or settings.get("format", "hermes"),
        max_steps=args.max_steps if args.max_steps is not None else config.max_steps,
        thinking=config.thinking,
    )
    with agent:  # stops MCP servers and kernels on the way out
        if args.question:
            _answer(agent, args.question, [], args.quiet, sys.stdout)
            return 0
        return _interactive(agent, args.quiet)


def _chat_tools(config: Any, args: argparse.Namespace) -> list[Any]:
    """The config's tools, then --tool, --knowledge and --mcp-config ones (or the default)."""
    if args.knowledge:
        config.knowledge.extend(str(path) for path in args.knowledge)
    specs: list[Any] = [*config.tool_specs(), *args.tool]
    if args.mcp_config:
        config.mcp_servers.update(_mcp_file(args.mcp_config))
    tools: list[Any] = []
    try:
        tools.extend(config.make_tool(spec, None) for spec in specs)
        if not specs and not config.mcp_servers:
            tools = _default_tools()
        if config.mcp_servers:
            tools.append(config.open_mcp())
    except BaseException:
        _close_all(tools)
        raise
    return tools


def _close_all(tools: list[Any]) -> None:
    for tool in tools:
        close = getattr(tool, "close", None)
        if callable(close):
            close()


def _mcp_file(path: Path) -> dict[str, Any]:
    """The servers of a Claude Desktop style JSON file (``{"mcpServers": {...}}``)."""
    import json

    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read MCP config {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"MCP config {path} is not valid JSON: {exc}") from None
    servers = data.get("mcpServers", data) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f'MCP config {path} must hold {{"mcpServers": {{name: {{...}}}}}}')
    return servers


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


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from qwen_agent.serving.app import ServeConfig, create_app
        from qwen_agent.serving.server import api_key_from_env
    except ImportError as exc:
        raise _missing_extra("serve", "serve", exc) from None
    from qwen_agent.config import AgentConfig
    from qwen_agent.llm import get_chat_model

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logging.getLogger("qwen_agent").addHandler(handler)
    logging.getLogger("qwen_agent").setLevel(logging.INFO)
    llm: dict[str, Any] = {
        k: getattr(args, k) for k in ("backend", "model", "base_url", "mode") if getattr(args, k)
    }
    if args.native_tools:
        llm["native_tools"] = True
    agents = [AgentConfig.load(path) for path in args.config]
    if args.store:
        agents.extend(_published(args.store))
    options = {
        "host": args.host,
        "port": args.port,
        "api_key": args.api_key or api_key_from_env(),
        "format": args.format or "hermes",
    }
    for key in ("max_concurrency", "max_queue", "queue_timeout"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    try:
        config = ServeConfig.model_validate(options)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    # the port first: a taken port is said before minutes of model loading, and the socket
    # bound now is the one uvicorn serves on (no race with another process)
    sock = _bind(args.host, args.port)
    model = get_chat_model(llm)
    app = create_app({args.served_model_name: model}, config, agents)
    host = f"[{args.host}]" if ":" in args.host else args.host
    names = [args.served_model_name, *(f"agent:{a.name}" for a in agents)]
    print(
        f"qwen-agent serve: {', '.join(names)} at http://{host}:{sock.getsockname()[1]}/v1"
        f"{' (API key required)' if config.api_key else ''}",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            limit_concurrency=config.max_connections,
        )
    )
    try:
        server.run(sockets=[sock])
    finally:
        app.state.close()
    return 0


def _bind(host: str, port: int) -> Any:
    """A listening socket on ``host:port``, or a ConfigError that says why not."""
    import errno
    import socket

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0-65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r} is not an address here: {exc.strerror}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}"
            + (
                " (another server is using it; pick another --port)"
                if exc.errno == errno.EADDRINUSE
                else ""
            )
        ) from None
    return sock


def _missing_extra(what: str, extra: str, exc: ImportError) -> ConfigError:
    return ConfigError(
        f"{what} needs the [{extra}] extra ({exc.name} is missing): "
        f"pip install 'qwen-agent-kit[{extra}]'"
    )


def _published(where: str) -> list[Any]:
    """The agents published in an AgentFabric store (a data folder or a database URL),
    with their files written out where their tools read them."""
    try:
        from agentfabric.store import Store
    except ImportError as exc:
        raise _missing_extra("--store", "fabric", exc) from None
    url = where if "://" in where else None
    folder = Path(where) if url is None else None
    store = Store(url, folder)
    try:
        from agentfabric.app import data_dir

        files = data_dir(folder) / "files"
        files.mkdir(parents=True, exist_ok=True, mode=0o700)
        return [
            store.materialize(record, files).model_copy(update={"llm": None})
            for record in store.published()
        ]
    finally:
        store.close()


def _fabric(args: argparse.Namespace) -> int:
    try:
        from agentfabric.app import FabricOptions, launch
    except ImportError as exc:
        raise _missing_extra("fabric", "fabric", exc) from None
    auth = []
    for pair in args.auth:
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            raise ConfigError(f"--auth takes USER:PASSWORD, got {pair!r:.40}")
        auth.append((user, password))
    llm = {
        k: getattr(args, k)
        for k in ("backend", "model", "base_url", "api_key")
        if getattr(args, k) is not None
    }
    print(f"AgentFabric: http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    launch(
        FabricOptions(
            data_dir=args.data_dir,
            db=args.db,
            llm=llm,
            format=args.format,
            host=args.host,
            port=args.port,
            auth=auth,
            user_header=args.user_header,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
