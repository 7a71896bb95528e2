"""An agent kept in AgentFabric's store, published, and served by ``qwen-agent serve --store``
to the official ``openai`` client as ``agent:NAME``, with its tools (the code interpreter,
run server-side in its sandbox) and on the bundled model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qwen_agent.config import AgentConfig
from tests.sandbox_helpers import sandbox_skip_reason
from tests.test_readme import _free_port, _wait_healthy

pytest.importorskip("sqlalchemy")
pytest.importorskip("openai")
pytest.importorskip("torch", reason="the bundled model needs the [local] extra")

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.network


def test_serve_store_answers_the_openai_client_as_the_published_agent(tmp_path):
    reason = sandbox_skip_reason()
    if reason:
        pytest.skip(reason)
    from openai import OpenAI

    from agentfabric.store import Store

    data = tmp_path / "fabric"
    store = Store(None, data)
    made = store.create_agent(
        "user:alice", AgentConfig(name="Calculator", tools=["code_interpreter"])
    )
    store.set_published("user:alice", made.id, True)
    store.create_agent("user:bob", AgentConfig(name="Secret"))  # kept, never published
    store.close()

    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qwen_agent.cli",
            "serve",
            "--port",
            str(port),
            "--store",
            str(data),
            "--model",  # the server's mechanics, on the fast tiny model
            "qwen-tiny-agent",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc)
        client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        names = {m.id for m in client.models.list()}
        assert "agent:Calculator" in names and "agent:Secret" not in names, names
        reply = client.chat.completions.create(
            model="agent:Calculator",
            messages=[{"role": "user", "content": "compute 12 * 34 with the code interpreter"}],
        )
        assert "408" in reply.choices[0].message.content
    finally:
        proc.terminate()
        proc.wait(20)


def test_serve_store_refuses_a_store_that_is_not_there(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "qwen_agent.cli",
            "serve",
            "--store",
            "sqlite:///" + "/nonexistent/x.db",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "configuration error" in done.stderr


def test_the_fabric_command_serves_the_page_on_loopback_with_its_security_headers(tmp_path):
    import time

    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwen_agent.cli", "fabric", "--port", str(port)]
        + ["--data-dir", str(tmp_path / "data"), "--model", "qwen-tiny-agent"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 120
        page = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert page is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert page.status_code == 200
        assert "img-src 'self'" in page.headers["content-security-policy"]
        assert (tmp_path / "data" / "fabric.db").is_file()
        from tests.net import listening_on

        assert listening_on(port) == {"0100007F"}  # 127.0.0.1 as /proc/net/tcp writes it
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_fabric_command_refuses_a_bad_login_option(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "qwen_agent.cli", "fabric", "--auth", "alice"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2 and "--auth takes USER:PASSWORD" in done.stderr
