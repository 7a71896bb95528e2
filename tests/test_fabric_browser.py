"""AgentFabric in a real headless Chromium (Debian's, driven by Playwright) against the app on
127.0.0.1, with login on for two people.

The builder's plumbing is driven by ScriptedLLM (the app's wiring is under test here); the
Preview chat runs on the bundled model, and one builder turn too. The screenshots the
README shows are taken here, from the current app, into docs/.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from qwen_agent.llm import Delta, LLMConfig, ModelRequest, astream, get_chat_model
from qwen_agent.testing import ScriptedLLM

REQUIRED = os.environ.get("QWEN_REQUIRE_BROWSER") == "1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent.parent / "docs"

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the [dev] extra brings it
    if REQUIRED:
        raise
    pytest.skip("playwright is not installed ([dev] extra)", allow_module_level=True)
if not Path(CHROMIUM).exists():
    if REQUIRED:
        pytest.fail(f"no chromium at {CHROMIUM} (apt-get install chromium)", pytrace=False)
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
pytest.importorskip("gradio")

pytestmark = [pytest.mark.network, pytest.mark.timeout(900)]

UPDATE = (
    '<tool_call>\n{"name": "update_agent_config", "arguments": {"name": "Wanderer", '
    '"description": "Plans trips and suggests places to visit", '
    '"tools": ["code_interpreter"], "conversation_starters": ["Plan a weekend in Rome"], '
    '"welcome_message": "Where shall we go?"}}\n</tool_call>'
)


class Router:
    """The app's one model: builder turns (their request lists update_agent_config) go to
    a script while ``scripted`` is on, everything else to the bundled model."""

    def __init__(self) -> None:
        self.bundled = get_chat_model(LLMConfig())
        # the builder's words carry markup that must stay text in the page
        done = (
            "Done: it is Wanderer, a travel planner. <img src=x onerror=alert(1)>"
            "<script>alert(2)</script> ![pixel](http://198.51.100.7/p.png?leak=1)"
        )
        self.script = ScriptedLLM([UPDATE, done])
        self.scripted = True
        self.builder_turns = 0

    async def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        builder = any(t.name == "update_agent_config" for t in request.tools)
        model = self.script if builder and self.scripted else self.bundled
        self.builder_turns += builder
        async for delta in astream(model, request):
            yield delta


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[tuple[str, Router]]:
    from agentfabric.app import FabricOptions, launch

    router = Router()
    options = FabricOptions(
        data_dir=tmp_path_factory.mktemp("fabric"),
        port=_port(),
        auth=[("alice", "alice-pw"), ("bob", "bob-pw")],
    )
    fabric, demo = launch(options, llm=router, block=False)
    try:
        yield f"http://127.0.0.1:{options.port}/", router
    finally:
        demo.close()
        fabric.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        try:
            yield b
        finally:
            b.close()


class Visit:
    """One person's browser context: every request it makes is recorded."""

    def __init__(self, browser: object, url: str, user: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        # a request for any other host is recorded and never sent (the test stays on
        # loopback even if the page's policy failed)
        self.outside: list[str] = []
        self.context.route("**/*", self._only_loopback)
        self.url = url
        self.login(user)

    def _only_loopback(self, route: object) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def login(self, user: str) -> None:
        page = self.page
        page.goto(self.url, wait_until="load")
        page.get_by_label("username").fill(user)
        page.get_by_label("password").fill(f"{user}-pw")
        page.get_by_role("button", name="Login").click()
        expect(page.locator("#builder-input textarea")).to_be_visible(timeout=30_000)
        self.wait_idle()

    def wait_idle(self) -> None:
        # the page has loaded its state when the agents' dropdown shows a name
        expect(self.page.locator("#agents input")).not_to_have_value("", timeout=30_000)

    def close(self) -> None:
        self.context.close()


def _bot_texts(page: Page, chat: str) -> list[str]:
    return page.locator(f"#{chat} [data-testid='bot']").all_inner_texts()


def test_build_by_chat_form_fills_preview_streams_reload_and_privacy(app, browser):
    url, router = app
    alice = Visit(browser, url, "alice")
    page = alice.page
    try:
        # Create: one builder message; the builder's update fills the form and the preview
        page.fill("#builder-input textarea", "make me a travel planner called Wanderer")
        page.press("#builder-input textarea", "Enter")
        expect(page.locator("#builder-chat")).to_contain_text(
            "Done: it is Wanderer", timeout=30_000
        )
        expect(page.locator("#builder-chat")).to_contain_text("update_agent_config")
        expect(page.locator("#preview-chat")).to_contain_text("Plan a weekend in Rome")
        expect(page.locator("#agents input")).to_have_value("Wanderer")
        page.screenshot(path=str(DOCS / "fabric-create.png"))
        # Configure: the form shows what the builder set
        page.get_by_role("tab", name="Configure").click()
        expect(page.locator("#cfg-name textarea, #cfg-name input").first).to_have_value("Wanderer")
        desc = page.locator("#cfg-description textarea, #cfg-description input").first
        expect(desc).to_have_value("Plans trips and suggests places to visit")
        ci = page.locator("#cfg-tools").get_by_label("Code interpreter", exact=False)
        expect(ci).to_be_checked()
        page.screenshot(path=str(DOCS / "fabric-configure.png"))
        # a hand edit: saved, and the preview follows at once
        welcome = page.locator("#cfg-welcome textarea, #cfg-welcome input").first
        welcome.fill("Hello, traveller!")
        welcome.press("Tab")  # saved when the field loses focus
        expect(page.locator("#status")).to_contain_text("Saved", timeout=15_000)
        # Preview on the bundled model: a tool step and a streamed answer
        page.evaluate(
            """() => {
              window.__lengths = [];
              const chat = document.querySelector('#preview-chat');
              new MutationObserver(() => {
                const bots = chat.querySelectorAll("[data-testid='bot']");
                if (bots.length) window.__lengths.push(bots[bots.length - 1].innerText.length);
              }).observe(chat, {subtree: true, childList: true, characterData: true});
            }"""
        )
        box = page.locator("#preview-input textarea")
        box.fill("compute 12 * 34 with the code interpreter")
        box.press("Enter")
        expect(page.locator("#preview-chat")).to_contain_text("code_interpreter", timeout=120_000)
        # the answer itself, a message of its own (the tool step's result shows 408 first)
        answer = (
            page.locator("#preview-chat [data-testid='bot']")
            .filter(has_text="408")
            .filter(has_not_text="code_interpreter")
        )
        expect(answer.first).to_be_visible(timeout=120_000)
        lengths = page.evaluate("window.__lengths")
        assert len({n for n in lengths if n}) >= 2, f"the answer did not stream: {lengths}"
        page.screenshot(path=str(DOCS / "fabric-preview.png"))
        # reload: the agent, its form and its preview conversation are all still there
        page.reload(wait_until="load")
        alice.wait_idle()
        expect(page.locator("#agents input")).to_have_value("Wanderer")
        expect(answer.first).to_be_visible(timeout=15_000)
        # another person sees none of it
        bob = Visit(browser, url, "bob")
        try:
            expect(bob.page.locator("#agents input")).not_to_have_value("Wanderer")
            bob.page.locator("#agents input").click()
            expect(bob.page.get_by_role("option").first).to_be_visible(timeout=10_000)
            options = bob.page.get_by_role("option").all_inner_texts()
            assert options and not any("Wanderer" in o for o in options), options
            expect(bob.page.locator("#preview-chat")).not_to_contain_text("408")
        finally:
            bob.close()
        # the builder's markup stayed text: no script ran, no image was fetched from "x"
        assert alice.dialogs == []
        assert alice.outside == []  # the page's policy stopped the pixel before any request
        # nothing but 127.0.0.1 was asked for anything
        # (the browser reports the blocked pixel as a request it did not send; the route
        # above is where requests leave the page, and none left for another host)
        hosts = {urlparse(u).hostname for u in alice.requests if u.startswith("http")}
        assert hosts - {"198.51.100.7"} == {"127.0.0.1"}, hosts
    finally:
        alice.close()


def test_one_builder_turn_on_the_bundled_model(app, browser):
    url, router = app
    router.scripted = False
    before = router.builder_turns
    alice = Visit(browser, url, "alice")
    page = alice.page
    try:
        page.locator("#new-agent").click()
        expect(page.locator("#status")).to_contain_text("Created", timeout=15_000)
        page.fill("#builder-input textarea", "add the code interpreter")
        page.press("#builder-input textarea", "Enter")
        # the bundled builder's reply (whatever it says) arrives; the app stays usable
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _bot_texts(page, "builder-chat"):
            time.sleep(0.5)
        assert _bot_texts(page, "builder-chat"), "no builder reply"
        assert router.builder_turns > before
        expect(page.locator("#builder-chat")).not_to_contain_text("Something went wrong")
    finally:
        router.scripted = True
        alice.close()


def test_knowledge_and_avatar_uploads_through_the_page(app, browser, tmp_path):
    url, _ = app
    doc = tmp_path / "../handbook.md"  # the name is data: only "handbook.md" is kept
    doc.write_text("Lunch is served at noon.")
    from PIL import Image

    picture = tmp_path / "face.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(picture)
    alice = Visit(browser, url, "alice")
    page = alice.page
    try:
        page.get_by_role("tab", name="Configure").click()
        page.locator("#cfg-knowledge input[type=file]").set_input_files(str(doc))
        expect(page.locator("#status")).to_contain_text(
            "Added handbook.md to the knowledge base", timeout=30_000
        )
        page.locator("#knowledge-list input").click()
        expect(page.get_by_role("option", name="handbook.md")).to_be_visible(timeout=10_000)
        page.keyboard.press("Escape")
        page.locator("#cfg-avatar input[type=file]").set_input_files(str(picture))
        expect(page.locator("#status")).to_contain_text("Avatar saved", timeout=30_000)
        expect(page.locator("#cfg-avatar img").first).to_be_visible(timeout=15_000)
        assert alice.dialogs == [] and alice.outside == []
    finally:
        alice.close()
