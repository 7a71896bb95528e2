"""The code interpreter with real Jupyter kernels in real bubblewrap sandboxes: state, plots,
errors, output limits, files, the pool's life cycle, and an agent using the tool."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from qwen_agent import Agent
from qwen_agent.errors import SandboxError
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import ImageItem, TextItem, ToolCall
from qwen_agent.testing import ScriptedLLM
from tests.sandbox_helpers import (
    assert_nothing_left,
    requires_sandbox,
    small_config,
)

pytestmark = [requires_sandbox, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def pool():
    from qwen_agent.tools.code_interpreter import KernelPool, OutputLimits

    p = KernelPool(small_config(), size=2, max_sessions=12, limits=OutputLimits(max_chars=2000))
    yield p
    p.shutdown()
    assert_nothing_left(p)


@pytest.fixture
def sid(pool):
    session_id = f"test-{uuid.uuid4().hex[:8]}"
    yield session_id
    pool.close_session(session_id)


def test_state_persists_between_calls(pool, sid):
    assert pool.execute(sid, "x = 12 * 34\nimport math").ok
    res = pool.execute(sid, "x + 1, math.sqrt(16)")
    assert res.ok and res.result == "(409, 4.0)"
    assert res.text == "(409, 4.0)"


def test_sessions_have_separate_kernels(pool, sid):
    other = sid + "-b"
    try:
        pool.execute(sid, "v = 'first'")
        res = pool.execute(other, "v")
        assert res.error is not None and res.error.ename == "NameError"
        assert pool.execute(sid, "v").result == "'first'"
    finally:
        pool.close_session(other)


def test_stdout_stderr_result_and_order(pool, sid):
    res = pool.execute(sid, "import sys\nprint('out')\nprint('err', file=sys.stderr)\n40 + 2")
    assert res.stdout == "out\n" and res.stderr == "err\n" and res.result == "42"
    assert res.text == "out\nstderr:\nerr\n42"


def test_error_has_a_trimmed_traceback_without_ipython_frames(pool, sid):
    res = pool.execute(sid, "def f():\n    return 1 / 0\nf()")
    assert res.error is not None and res.error.ename == "ZeroDivisionError"
    tb = res.error.traceback
    assert "Cell In[" in tb and "return 1 / 0" in tb and "ZeroDivisionError" in tb
    assert "\x1b[" not in tb and "/IPython/" not in tb and "-" * 20 not in tb
    res = pool.execute(sid, "open('/nonexistent/x')")
    assert "FileNotFoundError" in res.text and "interactiveshell" not in res.text
    chain = "def f0():\n    1 / 0\n" + "".join(
        f"def f{i}():\n    f{i - 1}()\n" for i in range(1, 30)
    )
    deep = pool.execute(sid, chain + "f29()")
    assert "traceback lines cut" in deep.error.traceback
    assert len(deep.error.traceback.splitlines()) <= 41


def test_matplotlib_plot_comes_back_as_png(pool, sid):
    res = pool.execute(
        sid,
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title('t')\n"
        "plt.show()",
    )
    assert res.ok, res.text
    assert len(res.images) == 1
    path = res.images[0]
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert path.startswith(pool.root) and "/outputs/" in path  # host-only, not in work/
    content = res.to_content()
    assert isinstance(content[0], TextItem) and "1 image(s) attached" in content[0].text
    assert content[1] == ImageItem(image=path)
    assert "<Figure" not in res.text


def test_other_image_png_outputs_are_kept_and_limited(pool, sid):
    code = (
        "from IPython.display import Image, display\nimport base64\n"
        "png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==')\n"
        "for _ in range(12): display(Image(png))"
    )
    res = pool.execute(sid, code)
    assert len(res.images) == 8 and "4 more image(s) not kept" in res.text


def test_long_output_is_truncated_with_a_note(pool, sid):
    res = pool.execute(sid, "for i in range(5000): print(i)")
    assert res.truncated and "output truncated" in res.text
    assert len(res.text) < 2600
    assert res.stdout.startswith("0\n1\n2\n") and "4999" in res.stdout  # head and tail


def test_upload_list_and_download(pool, sid):
    inside = pool.upload(sid, "data.csv", b"a,b\n1,2\n3,4\n")
    assert inside == "/home/user/data.csv"
    res = pool.execute(sid, "import csv\nrows = list(csv.reader(open('data.csv')))\nlen(rows)")
    assert res.result == "3"
    pool.execute(
        sid, "import os\nos.makedirs('out', exist_ok=True)\nopen('out/r.txt','w').write('hi')"
    )
    names = {f.path: f.size for f in pool.list_files(sid)}
    assert names == {"data.csv": 12, "out/r.txt": 2}
    assert pool.read_file(sid, "out/r.txt") == b"hi"
    assert pool.read_file(sid, "/home/user/out/r.txt") == b"hi"
    with pytest.raises(SandboxError, match="larger than"):
        pool.read_file(sid, "data.csv", max_bytes=5)


def test_uploaded_file_belongs_to_the_session_user(pool, sid):
    pool.upload(sid, "f.txt", b"x")
    res = pool.execute(sid, "open('f.txt', 'a').write('y'); open('f.txt').read()")
    assert res.result == "'xy'"


def test_kernel_restart_keeps_files(pool, sid):
    pool.execute(sid, "open('keep.txt', 'w').write('kept'); y = 1")
    res = pool.execute(sid, "import os; os._exit(1)")
    assert res.kernel_restarted
    after = pool.execute(sid, "open('keep.txt').read()")
    assert after.result == "'kept'"
    assert pool.execute(sid, "y").error.ename == "NameError"


def test_pool_hands_out_warm_kernels_and_refills(pool):
    assert pool.wait_warm(timeout=60)
    warm_before = pool.warm_count()
    sid = f"warm-{uuid.uuid4().hex[:6]}"
    try:
        t0 = time.monotonic()
        assert pool.execute(sid, "1 + 1").result == "2"
        first = time.monotonic() - t0
        assert first < 5, first  # a warm kernel, not a cold start queued behind others
        assert pool.wait_warm(warm_before, timeout=60)
    finally:
        pool.close_session(sid)


def test_concurrent_sessions(pool):
    ids = [f"conc-{i}-{uuid.uuid4().hex[:4]}" for i in range(4)]
    results: dict[str, object] = {}

    def work(s: str, n: int) -> None:
        pool.execute(s, f"n = {n}")
        results[s] = pool.execute(s, "n * 2").result

    threads = [threading.Thread(target=work, args=(s, i)) for i, s in enumerate(ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    try:
        assert results == {s: str(i * 2) for i, s in enumerate(ids)}
    finally:
        for s in ids:
            pool.close_session(s)


def test_close_session_removes_kernel_and_files(pool):
    sid = f"close-{uuid.uuid4().hex[:6]}"
    pool.execute(sid, "open('f', 'w').write('x')")
    work = pool.working_dir(sid)
    uid = os.stat(work).st_uid
    pool.close_session(sid)
    assert not os.path.exists(work)
    from qwen_agent.tools.code_interpreter.uids import uid_processes

    assert uid >= pool.config.uid_base and not uid_processes(uid)
    assert not pool.has_session(sid)
    pool.close_session(sid)  # idempotent


def test_max_sessions_is_enforced():
    from qwen_agent.tools.code_interpreter import KernelPool

    with KernelPool(small_config(), size=0, max_sessions=1) as p:
        p.execute("a", "1")
        with pytest.raises(SandboxError, match="too many open sessions"):
            p.execute("b", "1")
        p.close_session("a")
        assert p.execute("b", "2").result == "2"
    assert_nothing_left(p)


def test_idle_sessions_are_reaped():
    from qwen_agent.tools.code_interpreter import KernelPool

    with KernelPool(small_config(), size=0, idle_timeout=0.5) as p:
        p.execute("idle", "1")
        work = p.working_dir("idle")
        deadline = time.monotonic() + 20
        while (p.has_session("idle") or os.path.exists(work)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not p.has_session("idle")
        assert not os.path.exists(work)
    assert_nothing_left(p)


def test_failed_warmup_is_reported():
    from qwen_agent.tools.code_interpreter import KernelPool

    with KernelPool(small_config(warmup_code="1 / 0"), size=0) as p:
        with pytest.raises(SandboxError, match="(?s)warm-up code failed.*ZeroDivisionError"):
            p.execute("s", "1")
    assert_nothing_left(p)


def test_warmup_code_runs_in_every_kernel():
    from qwen_agent.tools.code_interpreter import KernelPool

    with KernelPool(small_config(warmup_code="import json\nwarm = True"), size=1) as p:
        assert p.wait_warm(timeout=60)
        assert p.execute("s", "warm, json.dumps([1])").result == "(True, '[1]')"
    assert_nothing_left(p)


def test_agent_answers_through_a_real_sandboxed_kernel(pool, sid):
    from qwen_agent.tools.code_interpreter import CodeInterpreter

    tool = CodeInterpreter(session_id=sid, pool=pool)
    call = HermesFormat().render_calls(
        [ToolCall(name="code_interpreter", arguments={"code": "print(12*34)"})]
    )
    llm = ScriptedLLM([call, "12 * 34 = 408."])
    agent = Agent(llm=llm, tools=[tool])
    answer, messages = agent.chat("what is 12*34?")
    assert answer == "12 * 34 = 408."
    tool_msgs = [m for m in messages if m.role == "tool"]
    assert len(tool_msgs) == 1 and tool_msgs[0].text == "408"
    assert "408" in str(llm.prompts[1][-1].content)  # the model saw the kernel's output
    # the kernel is the conversation's: a second call sees the first call's state
    assert tool.call(code="_ih[-2]")[0].text.strip("'") == "print(12*34)"


CHILD = """
import json, os, signal, sys
from qwen_agent.tools.code_interpreter import KernelPool
from tests.sandbox_helpers import small_config
pool = KernelPool(small_config(), size=1)
pool.wait_warm(timeout=60)
assert pool.execute("s", "import os; os.fork() or __import__('time').sleep(600)", timeout=1)
session_uid = os.stat(pool.working_dir("s")).st_uid
print(json.dumps({"uids": pool.uids_used(), "root": pool.root, "uid": session_uid}), flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_no_orphans_when_the_host_process_exits_or_is_killed(how):
    """Without shutdown(): at normal exit the atexit hook stops everything. After SIGKILL
    the running sandboxes die with their parent (a parent-death signal); a kernel caught
    half-started, and the mounts and cgroups, are reclaimed by the next pool's sweep."""
    import json
    import subprocess
    import sys

    from qwen_agent.tools.code_interpreter import KernelPool
    from qwen_agent.tools.code_interpreter.uids import uid_processes
    from tests.sandbox_helpers import mounts_under, pool_processes

    proc = subprocess.run(
        [sys.executable, "-c", CHILD, how], capture_output=True, text=True, timeout=90,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )  # fmt: skip
    assert proc.stdout, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(info["uids"]) == 2
    session = f"/s{info['uid']}/"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        uid_processes(info["uid"]) or pool_processes([], info["root"] + session)
    ):
        time.sleep(0.1)
    assert uid_processes(info["uid"]) == [] and pool_processes([], info["root"] + session) == []
    if how == "kill":
        assert mounts_under(info["root"])  # left behind by the crash ...
        with KernelPool(small_config(), size=0):
            pass  # ... and swept by the next pool
    assert pool_processes(info["uids"], info["root"]) == []
    assert mounts_under(info["root"]) == [] and not os.path.exists(info["root"])
