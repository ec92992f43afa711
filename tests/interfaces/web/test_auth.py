"""With `--auth USER:PASSWORD` (what sharing on a network requires), the page and every API route ask for the
password: a browser gets the login form, `gradio_client` without credentials (or with wrong ones) is refused,
plain HTTP to the routes answers 401; with the password, both work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.interfaces.web.conftest import free_port

pytestmark = pytest.mark.slow
USER, PASSWORD = "ann", "correct horse battery"
WAIT = 60_000


@pytest.fixture(scope="module")
def guarded_url(studio) -> Iterator[str]:
    """The app with a password, on a loopback port of its own (`--auth` works on loopback too)."""
    from anybody.interfaces.web.server import LOOPBACK, running_app

    port = free_port()
    with running_app(studio, LOOPBACK, port, auth=(USER, PASSWORD)):
        yield f"http://{LOOPBACK}:{port}/"


def test_the_api_refuses_without_the_password_and_works_with_it(guarded_url: str):
    import httpx
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        Client(guarded_url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(guarded_url, verbose=False, auth=(USER, "wrong"))
    for method, route in (("GET", "config"), ("GET", "gradio_api/info"), ("POST", "gradio_api/queue/join"),
                          ("POST", "gradio_api/upload"), ("POST", "gradio_api/call/details"),
                          ("POST", "gradio_api/run/details"), ("GET", "gradio_api/file=/etc/hostname")):
        answer = httpx.request(method, guarded_url + route, json={"data": ["alice"]}, timeout=30)
        assert answer.status_code == 401, (route, answer.status_code, answer.text[:200])

    app = Client(guarded_url, verbose=False, auth=(USER, PASSWORD))
    assert app.predict(api_name="/stop") == "Nothing is being learned from this page."


def test_the_page_asks_for_the_password(page: Page, guarded_url: str, shot):
    page.goto(guarded_url)
    password = page.locator("input[type=password]")
    expect(password).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("ask whoever started this app for its user name and password")).to_be_visible()
    expect(page.locator("#tab-learn")).to_have_count(0)
    shot(page, "login")
    user = page.get_by_role("textbox", name="username")
    user.fill(USER)
    password.fill("wrong")
    page.get_by_role("button", name="Login").click()
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible(timeout=WAIT)
    expect(page.locator("#tab-learn")).to_have_count(0)
    shot(page, "refused")
    user.fill(USER)
    password.fill(PASSWORD)
    page.get_by_role("button", name="Login").click()
    expect(page.get_by_role("tab", name="Learn")).to_be_visible(timeout=WAIT)
    shot(page, "in")
