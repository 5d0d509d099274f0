"""The chat page in a real headless browser: Playwright driving Debian's chromium against `mesa serve`."""

from __future__ import annotations

import shutil
import threading

import pytest
from _servers import free_port

pytest.importorskip("starlette", reason="needs the serve extra: pip install 'mesa-esc[serve]'")
pytest.importorskip("uvicorn", reason="needs the serve extra: pip install 'mesa-esc[serve]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 60_000  # generous: the machine is shared; nothing here asserts speed


@pytest.fixture
def server(make_agent):
    """`mesa serve`'s app over a scripted agent, run by uvicorn in a thread on a free port."""
    import uvicorn

    from mesa.serve import create_app
    from mesa.testing import ScriptedModel
    from mesa.tools import Perception
    from mesa.tools.base import EmotionScores

    class SteadyTextEmotion:
        """A text-emotion backend that always hears sadness: the page must show its cue."""

        name, version = "steady", "1"

        def classify(self, text):
            return EmotionScores(scores={"sadness": 0.8, "joy": 0.2})

        async def aclassify(self, text):
            return self.classify(text)

    script = ScriptedModel(user_emotion="sadness", strategy="Restatement", system_emotion="sadness", reply="That sounds really hard.")
    agent = make_agent(model=script, perception=Perception(text_emotion=SteadyTextEmotion(), cache=False))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(agent), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(600):
        if server.started:
            started.set()
            break
        threading.Event().wait(0.1)
    assert started.is_set(), "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def _send(page, text: str) -> None:
    page.fill("#text", text)
    page.click("#send")


def test_the_page_streams_a_labelled_reply_then_shows_crisis_resources(server, page, tmp_path):
    page.goto(server + "/")
    sync_api.expect(page.locator("#server-info")).to_contain_text("mesa-scripted/", timeout=WAIT_MS)
    thread_id = page.locator("#thread-id").inner_text()
    assert thread_id

    _send(page, "I lost my job today")
    reply = page.locator(".msg.assistant").last
    sync_api.expect(reply.locator(".reply-text")).to_contain_text("That sounds really hard.", timeout=WAIT_MS)
    sync_api.expect(reply).to_have_attribute("data-done", "true", timeout=WAIT_MS)
    sync_api.expect(reply.locator(".label-user-emotion")).to_contain_text("sadness 90%")
    sync_api.expect(reply.locator(".label-strategy")).to_contain_text("Restatement")
    sync_api.expect(reply.locator(".label-system-emotion")).to_contain_text("sadness")
    sync_api.expect(reply.locator(".safety")).to_contain_text("none")
    sync_api.expect(reply.locator(".cue").first).to_contain_text("sadness")
    assert page.locator("#crisis-panel").is_hidden()

    _send(page, "I want to kill myself tonight.")
    panel = page.locator("#crisis-panel")
    sync_api.expect(panel).to_be_visible(timeout=WAIT_MS)
    sync_api.expect(panel).to_contain_text("988")
    sync_api.expect(page.locator(".msg.assistant").last.locator(".safety-crisis")).to_be_visible()
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)

    # A file goes up with the turn (multipart) and is named in the user's bubble.
    page.set_input_files("#file", files=[{"name": "face.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n" + b"\0" * 64}])
    sync_api.expect(page.locator("#attachment")).to_have_text("image: face.png")
    _send(page, "this is me today")
    sync_api.expect(page.locator(".msg.user").last).to_contain_text("[image: face.png]")
    sync_api.expect(page.locator(".msg.assistant").last).to_have_attribute("data-done", "true", timeout=WAIT_MS)
    assert page.locator("#attachment").inner_text() == ""

    # The conversation is kept by thread: a reload shows the turns again.
    page.reload()
    sync_api.expect(page.locator(".msg.user")).to_have_count(3, timeout=WAIT_MS)
    assert page.locator("#thread-id").inner_text() == thread_id
