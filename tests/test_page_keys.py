"""The page with API keys, in a real browser (Debian's chromium via Playwright): the first 401 asks
for a key once, the key goes into the HttpOnly cookie, and the page then shows the key's own tasks."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, server_env
from tests.test_auth_http import CONFIG, bearer
from tests.test_auth_keys import create_key
from tests.test_page import CHROMIUM, sync_playwright

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (requirements-dev.txt)"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: apt-get install chromium"),
    pytest.mark.timeout(180),
]


def test_the_page_asks_for_a_key_once_and_shows_that_keys_tasks(tmp_path):
    env = server_env(tmp_path)
    alice, bob = create_key(env, tmp_path, "alice", "run"), create_key(env, tmp_path, "bob", "run")
    srv = LiveServer(env, tmp_path).start()
    try:
        api = srv.url + "/api/v1"
        mine = httpx.post(f"{api}/task/create", json={"task_name": "alice voice", "config": CONFIG},
                          headers=bearer(alice)).json()["task_id"]
        theirs = httpx.post(f"{api}/task/create", json={"task_name": "bob voice", "config": CONFIG},
                            headers=bearer(bob)).json()["task_id"]
        prompts: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_context().new_page()
            page.set_default_timeout(30_000)

            def answer(dialog) -> None:
                prompts.append(dialog.message)
                dialog.accept(alice)

            page.on("dialog", answer)
            page.goto(srv.url + "/")
            page.wait_for_selector(f"tr[data-task-id='{mine}']")
            assert page.locator(f"tr[data-task-id='{theirs}']").count() == 0
            assert len(prompts) == 1 and "API key" in prompts[0]
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert cookies["gsv_key"]["httpOnly"] and cookies["gsv_key"]["sameSite"] == "Strict"
            assert page.evaluate("document.cookie") == ""  # no script can read the key
            browser.close()
    finally:
        srv.stop()
