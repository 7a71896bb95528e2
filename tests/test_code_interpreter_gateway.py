"""The scale-out path: the same tool against a real Jupyter Kernel Gateway on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from qwen_agent.errors import SandboxError
from tests.sandbox_helpers import requires_jupyter

pytestmark = [
    requires_jupyter,
    pytest.mark.network,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        importlib.util.find_spec("kernel_gateway") is None,
        reason="jupyter-kernel-gateway is not installed (pip install jupyter-kernel-gateway)",
    ),
]
TOKEN = "test-token-" + os.urandom(4).hex()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(tmp_path_factory.mktemp("kg") / "kg.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernel_gateway", "--KernelGatewayApp.ip=127.0.0.1",
         f"--KernelGatewayApp.port={port}", f"--KernelGatewayApp.auth_token={TOKEN}",
         "--JupyterWebsocketPersonality.list_kernels=True"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"kernel gateway exited: {log.read()[-2000:]}")
            try:
                httpx.get(f"{url}/api", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("kernel gateway did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def gpool(gateway):
    from qwen_agent.tools.code_interpreter import GatewayConfig, GatewayPool

    p = GatewayPool(GatewayConfig(url=gateway, auth_token=TOKEN, timeout=10, interrupt_grace=2))
    yield p
    p.shutdown()


def kernels(url: str) -> list[str]:
    r = httpx.get(f"{url}/api/kernels", headers={"Authorization": f"token {TOKEN}"}, timeout=10)
    return [k["id"] for k in r.json()]


def test_state_plot_and_errors_through_the_gateway(gpool):
    assert gpool.execute("g", "x = 12 * 34").ok
    assert gpool.execute("g", "x").result == "408"
    res = gpool.execute("g", "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")
    assert len(res.images) == 1
    with open(res.images[0], "rb") as f:
        assert f.read(4) == b"\x89PNG"
    assert gpool.execute("g", "1/0").error.ename == "ZeroDivisionError"


def test_timeout_interrupts_and_crash_recovers(gpool):
    gpool.execute("t", "kept = 1")
    res = gpool.execute("t", "while True:\n    pass", timeout=2)
    assert res.timed_out and res.error.ename == "KeyboardInterrupt"
    assert gpool.execute("t", "kept").result == "1"
    res = gpool.execute("t", "import os; os._exit(1)")
    assert res.kernel_restarted and "kernel died" in res.text
    assert gpool.execute("t", "1 + 1").result == "2"


def test_a_late_close_of_the_old_connection_does_not_reach_the_new_one(gpool):
    """After a crash the pool reconnects; the old WebSocket's close may be reported after
    the new connection is up (it was, under load): it must not end the next call."""
    gpool.execute("late", "1")
    old = gpool._sessions["late"].ws
    res = gpool.execute("late", "import os; os._exit(1)")
    assert res.kernel_restarted
    gpool._loop.call_soon_threadsafe(old._on_message_callback, None)  # the old one closes late
    time.sleep(0.2)
    assert gpool.execute("late", "1 + 1").result == "2"


def test_close_session_deletes_the_remote_kernel(gpool, gateway):
    gpool.execute("c", "1")
    assert len(kernels(gateway)) == 1
    gpool.close_session("c")
    assert kernels(gateway) == []


def test_the_tool_works_over_the_gateway(gpool):
    from qwen_agent.tools.code_interpreter import CodeInterpreter

    tool = CodeInterpreter(session_id="tool", pool=gpool)
    assert tool.call(code="print(12*34)")[0].text == "408"
    with pytest.raises(SandboxError, match="not available with a kernel gateway"):
        tool.upload("a.txt", b"x")


def test_bad_token_is_a_clear_error(gateway):
    from qwen_agent.tools.code_interpreter import GatewayConfig, GatewayPool

    with GatewayPool(GatewayConfig(url=gateway, auth_token="wrong")) as p:
        with pytest.raises(SandboxError, match="HTTP 403|HTTP 401"):
            p.execute("x", "1")
