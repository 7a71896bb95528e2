"""A real MCP server for the tests and the benchmark, written with the SDK's ``MCPServer``.

    python tests/mcp_server.py stdio [--name NAME] [--api-key KEY] [--url URL]
    python tests/mcp_server.py http PORT [--name NAME]    # streamable HTTP on 127.0.0.1:PORT/mcp

Tools: ``add``, ``echo``, ``slow`` (sleeps in a worker thread), ``hang`` (blocks the server's
event loop), ``crash`` (the process exits at once), ``fail`` (raises: an ``isError`` result),
``image`` (a small PNG), ``pid``, ``getenv``, ``cwd``, ``spawn`` (starts a worker process),
``big`` (a long text), ``blob`` (an image of some size) and one whose name a model cannot use.
``--api-key`` and ``--url`` are only written to stderr at start and by ``crash`` (with the
env's ``QA_MCP_SECRET``), as a careless server would: the tests check they go no further.
"""

import argparse
import os
import struct
import subprocess
import sys
import time
import zlib

from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

SECRETS_LINE = ""  # what --api-key, --url and QA_MCP_SECRET made this server write


def _png(width: int = 4, height: int = 3) -> bytes:
    """A red ``width`` x ``height`` RGB PNG, made without Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def build(name: str) -> MCPServer:
    server = MCPServer(name, log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def slow(seconds: float) -> str:
        """Sleep for some seconds (in a worker thread), then answer."""
        time.sleep(seconds)
        return f"slept {seconds}"

    @server.tool()
    async def hang(seconds: float) -> str:
        """Block the server's whole event loop for some seconds."""
        time.sleep(seconds)  # noqa: ASYNC251 - blocks on purpose: not even a ping is answered
        return f"hung {seconds}"

    @server.tool()
    def crash() -> str:
        """Kill this server process at once."""
        sys.stderr.write(f"{SECRETS_LINE}crashing on purpose\n")
        sys.stderr.flush()
        os._exit(3)

    @server.tool()
    def fail(message: str) -> str:
        """Raise an error with the message."""
        raise ToolError(message)

    @server.tool()
    def image() -> Image:
        """A small red PNG."""
        return Image(data=_png(), format="png")

    @server.tool()
    def pid() -> int:
        """This server's process id."""
        return os.getpid()

    @server.tool()
    def getenv(key: str) -> str:
        """The value of an environment variable, or '' when unset."""
        return os.environ.get(key, "")

    @server.tool()
    def cwd() -> str:
        """The server's working directory."""
        return os.getcwd()

    @server.tool(name="weird name/with:chars")
    def weird() -> str:
        """A tool whose name is not a valid model-side tool name."""
        return "weird ok"

    _more_tools(server)
    return server


def _more_tools(server: MCPServer) -> None:
    """Tools for the process-group and result-size tests."""

    @server.tool()
    def spawn(ignore_term: bool = False) -> int:
        """Start a worker process that sleeps (ignoring SIGTERM if asked); its pid."""
        code = (
            "import signal,sys,time\n"
            f"if {ignore_term}: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n"
        )
        worker = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        worker.stdout.readline()  # its SIGTERM handler is set
        worker.stdout.close()
        return worker.pid

    @server.tool()
    def big(chars: int) -> str:
        """A text of ``chars`` characters: 'x' repeated."""
        return "x" * chars

    @server.tool()
    def blob(size: int) -> Image:
        """An image of ``size`` bytes (not a real PNG)."""
        return Image(data=b"\x89PNG" + b"\0" * max(0, size - 4), format="png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("transport", choices=["stdio", "http"])
    ap.add_argument("port", type=int, nargs="?", default=0)
    ap.add_argument("--name", default="test")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--url", default="")
    args = ap.parse_args()
    if args.api_key or args.url or os.environ.get("QA_MCP_SECRET"):
        global SECRETS_LINE
        secret = os.environ.get("QA_MCP_SECRET", "")
        SECRETS_LINE = f"starting with {args.api_key} {args.url} {secret}\n"
        print(SECRETS_LINE, end="", file=sys.stderr, flush=True)
    server = build(args.name)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        if not args.port:
            ap.error("http needs a PORT")
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
