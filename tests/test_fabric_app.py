"""AgentFabric's logic below the page (agentfabric.fabric): preview and builder turns as chat
updates, persistence across a reload, errors as messages, two tabs, owners, uploads, the
avatar drawn by the bundled diffusion model, and what the form may set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qwen_agent.config import AgentConfig
from qwen_agent.errors import BackendError, ConfigError
from qwen_agent.llm import Delta, ModelRequest
from qwen_agent.testing import ScriptedLLM
from tests.sandbox_helpers import sandbox_skip_reason

pytest.importorskip("sqlalchemy")
from agentfabric.builder import check_tool_options  # noqa: E402
from agentfabric.fabric import ChatView, Fabric, fence  # noqa: E402
from agentfabric.store import NotFound, Store  # noqa: E402


def call(tool: str, **arguments: object) -> str:
    import json

    return f"<tool_call>\n{json.dumps({'name': tool, 'arguments': arguments})}\n</tool_call>"


def drain(stream: AsyncIterator[list]) -> list[list]:
    async def go() -> list[list]:
        return [list(x) async for x in stream]

    return asyncio.run(go())


@contextmanager
def running_app(tmp_path: Path, **options: object) -> Iterator[tuple[Fabric, str]]:
    """The app launched on a free port of 127.0.0.1 with a scripted model: (fabric, url)."""
    import socket

    from agentfabric.app import FabricOptions, launch

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = FabricOptions(data_dir=tmp_path / "data", port=port, **options)
    fabric, demo = launch(config, llm=ScriptedLLM("ok"), block=False)
    try:
        yield fabric, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        fabric.store.close()


@pytest.fixture
def make(tmp_path):
    made: list[Store] = []

    def _make(llm, data: Path | None = None) -> Fabric:
        data = data or tmp_path / "data"
        store = Store(None, data)
        made.append(store)
        return Fabric(store, llm, data)

    yield _make
    for store in made:
        store.close()


def test_a_builder_turn_updates_the_draft_store_and_preview_and_survives_a_reload(make, tmp_path):
    llm = ScriptedLLM(
        [
            call("update_agent_config", name="Wanderer", conversation_starters=["Rome?"]),
            "Done: it is Wanderer.",
            "Ciao! <script>alert(1)</script>",
        ]
    )
    fabric = make(llm)
    tab = fabric.session("tab-1", "user:alice")
    chats = drain(fabric.builder_turn(tab, "make me a travel planner called Wanderer"))
    assert chats[-1][-1]["content"] == "Done: it is Wanderer."
    step = next(m for m in chats[-1] if m.get("metadata"))
    assert step["metadata"]["title"] == "🛠️ update_agent_config"
    assert step["metadata"]["status"] == "done"
    kept = fabric.store.get_agent("user:alice", tab.agent_id)
    assert kept.config.name == "Wanderer" and kept.config.conversation_starters == ["Rome?"]
    chats = drain(fabric.preview_turn(tab, "hi"))
    assert chats[-1][-1] == {"role": "assistant", "content": "Ciao! <script>alert(1)</script>"}
    # a reload is a new tab: the agent, both conversations and their steps are all back
    again = fabric.session("tab-2", "user:alice")
    assert again.agent_id == tab.agent_id and again.draft.config.name == "Wanderer"
    assert [m["role"] for m in again.preview_chat] == ["user", "assistant"]
    assert any(m.get("metadata") for m in again.builder_chat)
    # and so is a restart of the app
    fabric.store.close()
    restarted = make(llm, tmp_path / "data")
    third = restarted.session("tab-3", "user:alice")
    assert third.draft.config.name == "Wanderer" and len(third.history) == 2


class Failing:
    """A backend that fails once mid-stream, then answers."""

    def __init__(self) -> None:
        self.calls = 0

    async def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        self.calls += 1
        yield Delta("Let me")
        if self.calls == 1:
            raise BackendError("the server answered 503", status_code=503)
        yield Delta(" answer.", "stop")


def test_a_backend_error_is_a_message_and_the_next_turn_works(make):
    fabric = make(Failing())
    tab = fabric.session("t", "local")
    chats = drain(fabric.preview_turn(tab, "hello"))
    last = chats[-1][-1]
    assert last["metadata"]["title"] == "⚠️ Error" and "503" in last["content"]
    assert tab.history == []  # the failed round is not kept as if it had answered
    chats = drain(fabric.preview_turn(tab, "hello again"))
    assert chats[-1][-1]["content"] == "Let me answer."


def test_two_tabs_editing_one_agent_never_lose_an_update(make):
    fabric = make(ScriptedLLM("ok"))
    one = fabric.session("one", "local")
    two = fabric.session("two", "local")
    assert one.agent_id == two.agent_id
    said = fabric.save(one, one.draft.config.model_copy(update={"instructions": "Be brief."}))
    assert said.startswith("Saved")
    said = fabric.save(two, two.draft.config.model_copy(update={"description": "stale"}))
    assert "another tab" in said
    assert two.draft.config.instructions == "Be brief."  # the latest version is loaded
    assert fabric.record(two).config.description == ""


def test_one_owner_cannot_open_anothers_agent(make):
    fabric = make(ScriptedLLM("ok"))
    alice = fabric.session("a", "user:alice")
    bob = fabric.session("b", "user:bob")
    assert alice.agent_id != bob.agent_id
    with pytest.raises(NotFound):
        fabric.open(bob, alice.agent_id)
    # a tab whose login changed is a new session for the new owner
    swapped = fabric.session("a", "user:bob")
    assert swapped.owner == "user:bob" and swapped.agent_id != alice.agent_id


def test_chat_uploads_go_to_the_sandbox_or_say_why_not(make, tmp_path):
    fabric = make(ScriptedLLM("ok"))
    tab = fabric.session("t", "local")
    sent = tmp_path / "data.csv"
    sent.write_text("a,b\n1,2\n")
    said = fabric.upload(tab, [str(sent)])
    assert "has none" in said[0]  # no code interpreter: nothing is copied anywhere
    reason = sandbox_skip_reason()
    if reason:
        pytest.skip(reason)
    fabric.save(tab, tab.draft.config.model_copy(update={"tools": ["code_interpreter"]}))
    said = fabric.upload(tab, [str(sent)])
    assert "Uploaded data.csv" in said[0]
    ci = fabric.preview_agent(tab).tools["code_interpreter"]
    assert "data.csv" in [Path(f.path).name for f in ci.list_files()]
    # a change of the config rebuilds the agent, not the sandbox: the file is still there
    fabric.save(tab, tab.draft.config.model_copy(update={"description": "changed"}))
    rebuilt = fabric.preview_agent(tab)
    assert rebuilt.tools["code_interpreter"] is not ci
    assert "data.csv" in [Path(f.path).name for f in rebuilt.tools["code_interpreter"].list_files()]
    tab.close()


def test_the_builder_draws_an_avatar_with_the_bundled_diffusion_model(make):
    pytest.importorskip("diffusers")
    llm = ScriptedLLM([call("update_agent_config", avatar="a smiling robot"), "Drawing it."])
    fabric = make(llm)
    tab = fabric.session("t", "local")
    drain(fabric.builder_turn(tab, "draw it an avatar: a smiling robot"))
    assert tab.avatar_prompt == "a smiling robot"
    assert fabric.draw_avatar(tab, tab.avatar_prompt) == "A new avatar was drawn."
    record = fabric.record(tab)
    avatar = fabric.store.materialize(record, fabric.files).avatar
    assert avatar and Path(avatar).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shown = Path(fabric.avatar(tab))  # the copy the page serves: in media, never files/
    assert shown.parent == fabric.media and shown.suffix == ".png"
    assert shown.read_bytes() == Path(avatar).read_bytes()


def test_tool_results_are_shown_as_data_never_markup(tmp_path):
    view = ChatView(tmp_path)
    view.tool_call("c1", "search", {"q": "```\n<b>x</b>"})
    view.tool_result("c1", "search", "```` closes? <img src=x onerror=alert(1)>", False, [])
    content = view.messages[0]["content"]
    assert "`````\n```` closes?" in content  # a longer fence than anything inside
    assert fence("a ``` b").startswith("````\n")
    link = tmp_path / "link.png"
    link.symlink_to("/etc/passwd")
    from qwen_agent.messages import FileItem, ImageItem

    assert view.keep(ImageItem(image=str(link))) is None  # a planted link is not followed
    assert view.keep(FileItem(file="/nonexistent")) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"retrieval": {"files": ["/etc"]}}', "no option 'files'"),
        ('{"code_interpreter": {"session_id": "someone-else"}}', "no option 'session_id'"),
        ('{"image_gen": {"output_dir": "/tmp"}}', "no option 'output_dir'"),
        ('{"web": {}}', "no built-in tool 'web'"),
        ('{"code_interpreter": {"timeout": 1e12}}', "must be between 1 and 300"),
        ('{"image_gen": {"device": "cuda:7"}}', "no option 'device'"),
        ('{"retrieval": {"top_k": "many"}}', "is a number"),
        ('{"retrieval": {"top_k": 2.5}}', "whole number"),
        ("{not json", "not valid JSON"),
        ('{"retrieval": 3}', "tool options are"),
    ],
)
def test_the_form_cannot_set_host_paths_or_app_options(text, message):
    with pytest.raises(ConfigError, match="") as err:
        check_tool_options(text)
    assert message in str(err.value)
    assert check_tool_options('{"retrieval": {"top_k": 6}}') == {"retrieval": {"top_k": 6}}


def test_knowledge_is_given_to_retrieval_and_old_configs_still_load(tmp_path):
    doc = tmp_path / "guide.md"
    doc.write_text("The office opens at nine.")
    config = AgentConfig(name="a", tools=[{"name": "retrieval", "top_k": 2}], knowledge=[str(doc)])
    assert config.tool_specs() == [{"name": "retrieval", "top_k": 2, "files": [str(doc)]}]
    assert AgentConfig(knowledge=["x"]).tool_specs() == [{"name": "retrieval", "files": ["x"]}]
    old = tmp_path / "old.toml"
    old.write_text('instructions = "Be brief."\ntools = []\n')
    loaded = AgentConfig.load(old)
    assert loaded.name == "old" and loaded.description == "" and loaded.version == 1
    from qwen_agent import Agent

    agent = Agent.from_config(AgentConfig(name="k", knowledge=[str(doc)]), llm=ScriptedLLM("fine"))
    try:
        result = agent.tools["retrieval"].call(query="when does the office open")
        assert "nine" in str(result)
    finally:
        agent.close()


class Endless:
    """A model that streams until it is stopped."""

    async def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        yield Delta("The answer is")
        while True:
            await asyncio.sleep(0.01)
            yield Delta(" more")


def test_a_stopped_round_keeps_what_was_said(make):
    fabric = make(Endless())
    tab = fabric.session("t", "local")

    async def stop_after_a_few() -> None:
        stream = fabric.preview_turn(tab, "tell me")
        n = 0
        async for _ in stream:
            n += 1
            if n == 5:
                break
        await stream.aclose()  # what the Stop button (or a page that went away) does

    asyncio.run(stop_after_a_few())
    assert [m.role for m in tab.history] == ["user", "assistant"]
    assert tab.history[1].text.startswith("The answer is") and "(stopped)" in tab.history[1].text
    again = fabric.session("t2", "local")
    assert again.history[1].text == tab.history[1].text  # kept in the store too


def test_the_pages_agent_actions_through_the_real_gradio_client(tmp_path):
    """New, duplicate, export, import (a good file and a hostile one), delete: the page's
    own handlers, called as a browser calls them."""
    import json

    from gradio_client import Client, handle_file

    with running_app(tmp_path) as (fabric, url):
        client = Client(url, verbose=False)

        def names(out: tuple) -> list[str]:
            return [label for label, _ in out[0]["choices"]]

        first = client.predict(api_name="/on_load")
        assert names(first) == ["my-assistant"]
        out = client.predict(api_name="/on_new")
        assert sorted(names(out)) == ["my-assistant", "my-assistant-2"] and "Created" in out[-1]
        out = client.predict(api_name="/on_duplicate")
        assert "my-assistant-2-copy" in names(out) and out[-1].startswith("Duplicated")
        exported = client.predict(api_name="/on_export")
        path = exported["value"] if isinstance(exported, dict) else exported
        data = json.loads(Path(path).read_text())
        assert data["format"] == "qwen-agent-fabric" and data["config"]["name"]
        out = client.predict(handle_file(path), api_name="/on_import")
        assert out[-1].startswith("Imported") and len(names(out)) == 4
        hostile = tmp_path / "hostile.json"
        data["config"]["tools"] = ["os:system"]
        hostile.write_text(json.dumps(data))
        out = client.predict(handle_file(str(hostile)), api_name="/on_import")
        assert out[-1].startswith("Import refused") and "os:system" in out[-1]
        assert len(names(out)) == 4
        out = client.predict(api_name="/on_delete")
        assert out[-1].startswith("Deleted") and len(names(out)) == 3


def test_behind_a_trusted_proxy_the_user_header_decides_the_owner(tmp_path):
    from gradio_client import Client

    with running_app(tmp_path, user_header="X-Forwarded-User") as (fabric, url):
        carol = Client(url, headers={"X-Forwarded-User": "carol"}, verbose=False)
        carol.predict(api_name="/on_load")
        carol.predict(api_name="/on_new")
        dave = Client(url, headers={"X-Forwarded-User": "dave"}, verbose=False)
        seen = dave.predict(api_name="/on_load")
        assert [label for label, _ in seen[0]["choices"]] == ["my-assistant"]
        owners = {r.owner for o in ("user:carol", "user:dave") for r in fabric.store.list_agents(o)}
        assert owners == {"user:carol", "user:dave"}
        assert len(fabric.store.list_agents("user:carol")) == 2
        nobody = Client(url, verbose=False)
        with pytest.raises(Exception, match="(?i)error"):
            nobody.predict(api_name="/on_load")  # no header: refused, nothing made
        assert fabric.store.list_agents("local") == []


def test_knowledge_uploads_reach_the_preview_agents_retrieval(make):
    fabric = make(ScriptedLLM("ok"))
    tab = fabric.session("t", "local")
    fabric.store.add_file(
        "local", tab.agent_id, "knowledge", "../../handbook.md", b"Lunch is served at noon."
    )
    fabric.save(tab, tab.draft.config.model_copy(update={"tools": ["retrieval"]}))
    agent = fabric.preview_agent(tab)
    found = agent.tools["retrieval"].call(query="when is lunch served")
    assert "noon" in str(found)
    files = list((fabric.files / tab.agent_id).iterdir())
    assert len(files) == 1 and files[0].name != "handbook.md"  # a generated name, inside
    tab.close()


@pytest.mark.parametrize("native", [False, True])
def test_the_builder_on_a_model_behind_an_openai_compatible_server(make, native):
    """``qwen-agent fabric --base-url``: the builder's update travels over real HTTP, as
    text the app parses or as the server's own tool calls (``native_tools``)."""
    pytest.importorskip("fastapi")
    from qwen_agent.llm import LLMConfig, get_chat_model
    from qwen_agent.serving import Server

    script = ScriptedLLM([call("update_agent_config", name="Quill", tools=["image_gen"]), "Done."])
    server = Server(script).start()
    try:
        llm = get_chat_model(
            LLMConfig(base_url=server.url, model="qwen-agent", api_key="x", native_tools=native)
        )
        fabric = make(llm)
        tab = fabric.session("t", "local")
        chats = drain(fabric.builder_turn(tab, "call it Quill and let it draw"))
        assert chats[-1][-1]["content"] == "Done."
        kept = fabric.record(tab).config
        assert kept.name == "Quill" and kept.tools == ["image_gen"]
        # the server's model was shown the tool (as data when native, else in the prompt)
        assert "update_agent_config" in str(script.requests[0].tools or script.prompts[0])
    finally:
        server.stop()


def test_the_pages_server_hands_out_media_but_never_knowledge_files(tmp_path):
    import httpx

    with running_app(tmp_path) as (fabric, url):
        tab = fabric.session("t", "local")
        fabric.store.add_file("local", tab.agent_id, "knowledge", "secret.md", b"payroll")
        config = fabric.runtime_config(tab)  # written out for the agent's retrieval
        secret = Path(config.knowledge[0])
        assert secret.read_bytes() == b"payroll"
        shown = fabric.media / "shown.txt"
        shown.write_text("fine")
        base = f"{url}gradio_api/file="
        assert httpx.get(base + str(shown)).status_code == 200
        refused = httpx.get(base + str(secret))
        assert refused.status_code in (403, 404) and b"payroll" not in refused.content
        db = httpx.get(base + str(tmp_path / "data" / "fabric.db"))
        assert db.status_code in (403, 404)


def test_one_tab_key_for_two_owners_is_two_sessions_with_their_own_sandboxes(make):
    fabric = make(ScriptedLLM("ok"))
    a = fabric.session("", "user:alice")  # a client that sent no session hash
    b = fabric.session("", "user:bob")
    assert a is not b and a.sandbox != b.sandbox and a.agent_id != b.agent_id
    assert fabric.session("", "user:alice") is a  # alice's tab was not closed by bob's


def test_a_running_round_blocks_switching_and_a_clear_keeps_nothing_of_it(make):
    from agentfabric.fabric import Busy

    fabric = make(Endless())
    tab = fabric.session("t", "local")
    other = fabric.store.create_agent("local", AgentConfig(name="other"))

    async def go() -> None:
        stream = fabric.preview_turn(tab, "tell me")
        await stream.__anext__()
        await stream.__anext__()
        with pytest.raises(Busy):
            fabric.open(tab, other.id)  # the reply would land in the other agent
        again = [x async for x in fabric.preview_turn(tab, "and again")]
        assert "still running" in again[-1][-1]["content"]
        fabric.clear(tab, "preview")
        await stream.aclose()  # the Stop that Clear sends

    asyncio.run(go())
    assert tab.history == [] and tab.preview_chat == []
    assert fabric.store.load_conversation("local", tab.agent_id, "preview") == []
    fabric.open(tab, other.id)  # free again


def test_an_agent_deleted_in_another_tab_is_replaced_not_an_error(make):
    fabric = make(ScriptedLLM("ok"))
    one = fabric.session("one", "local")
    two = fabric.session("two", "local")
    keep = fabric.store.create_agent("local", AgentConfig(name="keep"))
    fabric.store.delete_agent("local", one.agent_id)
    again = fabric.session("two", "local")
    assert again is two and two.agent_id == keep.id  # the most recent one left
    assert fabric.record(two).config.name == "keep"


def test_old_exports_are_swept_and_versions_can_be_limited(make):
    import os
    import time

    fabric = make(ScriptedLLM("ok"))
    tab = fabric.session("t", "local")
    old = fabric.media / "export-old"
    old.mkdir()
    (old / "a.json").write_text("{}")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = fabric.media / "export-new"
    fresh.mkdir()
    fabric.sweep_exports()
    assert not old.exists() and fresh.exists()
    for i in range(5):
        fabric.save(tab, tab.draft.config.model_copy(update={"description": f"d{i}"}))
    latest = fabric.store.versions("local", tab.agent_id, latest=2)
    assert [v for v, _, _ in latest] == [5, 6]
    assert len(fabric.store.versions("local", tab.agent_id)) == 6
