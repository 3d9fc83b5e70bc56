"""The web portal and hosted chat in a real browser: headless Chromium from Debian's
`chromium` package, driven by Selenium through `chromium-driver`, against a running
`switchyard serve` whose engine is the test's own upstream (`chat_upstream.py`).

Every page the tests visit is saved as a screenshot under `var/portal-screenshots/`
(`SWITCHYARD_SCREENSHOTS` moves it) for a reviewer to look at."""

from __future__ import annotations

import csv
import datetime
import io
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from chat_upstream import ANSWER, ChatUpstream
from conftest import ADMIN_TOKEN, ORG_ADMIN_PASSWORD, REPO, bearer, invite_user, start_deployment, stop

SCREENSHOTS = Path(os.environ.get("SWITCHYARD_SCREENSHOTS", REPO / "var" / "portal-screenshots"))
PORTAL_FILES = REPO / "Sources" / "Portal" / "Resources"
# Every wait for the page to act is bounded by this, far above what it takes.
PATIENCE = 20
# Names that would run script if the page put them into HTML ('/' is not allowed in names).
EVIL_KEY_NAME = '<img src=x onerror="window.__pwned = 3">key'
EVIL_USER_NAME = '<img src=x onerror="window.__pwned = 4">Mallory'
SYSTEM_ADMIN_PASSWORD = "portal-system-admin-password"


@dataclass
class Portal:
    proxy: str
    deployment: object
    upstream: ChatUpstream
    tenant: dict
    other_tenant: dict
    admin: dict
    user: dict
    system_admin_email: str


def point_engine_at(upstream: ChatUpstream):
    def configure(config: dict) -> None:
        for pool in config["engine_pools"]:
            for replica in pool["replicas"]:
                replica["url"] = upstream.url
    return configure


@pytest.fixture(scope="module")
def portal():
    upstream = ChatUpstream()
    directory = Path(tempfile.mkdtemp(prefix="switchyard-e2e-portal-"))
    running = start_deployment(directory, configure=point_engine_at(upstream))
    tenant = running.cli_json("tenant", "create", "--name", "Acme Research", "--tier", "enterprise")
    other = running.cli_json("tenant", "create", "--name", "Other Org", "--tier", "enterprise")
    admin = invite_user(running, tenant["id"], "org_admin", email="ada@acme.example", name="Ada Admin")
    user = invite_user(running, tenant["id"], "org_user", email="uma@acme.example", name="Uma User")
    system_email = "ops@switchyard.example"
    created = httpx.post(running.proxy + "/admin/v1/users", headers=bearer(ADMIN_TOKEN), timeout=30, json={
        "email": system_email, "name": "Sam Operator", "role": "system_admin", "password": SYSTEM_ADMIN_PASSWORD,
    })
    assert created.status_code == 201, created.text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield Portal(running.proxy, running, upstream, tenant, other, admin, user, system_email)
    finally:
        stop(running.serve)
        stop(running.sim)
        upstream.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture()
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(PATIENCE)
    try:
        yield driver
        # Nothing the portal does may break its own Content-Security-Policy or throw.
        problems = [entry["message"] for entry in driver.get_log("browser")
                    if "Content Security Policy" in entry["message"] or "Uncaught" in entry["message"]]
        assert problems == []
    finally:
        driver.quit()


# MARK: - Helpers


def wait(driver, timeout: float = PATIENCE) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def sign_in(driver, portal: Portal, email: str, password: str = ORG_ADMIN_PASSWORD) -> None:
    driver.get(portal.proxy + "/portal/")
    wait(driver).until(lambda d: d.find_element(By.ID, "signin-form").is_displayed())
    driver.find_element(By.ID, "signin-email").send_keys(email)
    driver.find_element(By.ID, "signin-password").send_keys(password)
    driver.find_element(By.ID, "signin-submit").click()
    wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, "#whoami .user-name").text.strip())


def open_page(driver, portal: Portal, page: str):
    driver.get(portal.proxy + f"/portal/{page}")
    return wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, f"main#page-{page}"))


def pwned(driver):
    return driver.execute_script("return window.__pwned === undefined ? null : window.__pwned")


def fetch_status(driver, path: str, method: str = "GET") -> int:
    """The status the page's own session gets for `path` (writes send its CSRF token)."""
    return driver.execute_async_script("""
        const [path, method, done] = arguments;
        (async () => {
            const me = await (await fetch('/auth/me', {credentials: 'same-origin'})).json();
            const headers = {'content-type': 'application/json', 'x-csrf-token': me.csrf_token || ''};
            const answer = await fetch(path, {method, credentials: 'same-origin', headers,
                                              body: method === 'GET' ? undefined : '{"name":"x"}'});
            done(answer.status);
        })().catch(error => done(String(error)));
    """, path, method)


def session_of(driver) -> httpx.Cookies:
    cookies = httpx.Cookies()
    cookie = driver.get_cookie("switchyard_session")
    assert cookie is not None and cookie["httpOnly"]
    cookies.set("switchyard_session", cookie["value"])
    return cookies


def row_of(driver, table: str, text: str):
    """The row of `table` one of whose cells reads exactly `text`."""
    def find(d):
        for row in d.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"):
            if any(cell.text.strip() == text for cell in row.find_elements(By.TAG_NAME, "td")):
                return row
        return None
    return wait(driver).until(find)


def usage_event(portal: Portal, request_id: str, *, token: str) -> dict:
    """The ledger's record of a request, once the usage writer has taken it."""
    deadline = time.monotonic() + PATIENCE
    while True:
        answer = httpx.get(portal.proxy + f"/admin/v1/usage/events/{request_id}", headers=bearer(token), timeout=10)
        if answer.status_code == 200:
            return answer.json()
        assert answer.status_code == 404, answer.text
        assert time.monotonic() < deadline, f"{request_id} never reached the ledger"
        time.sleep(0.1)


def make_requests(portal: Portal, session: str, count: int) -> None:
    key = httpx.post(portal.proxy + f"/admin/v1/tenants/{portal.tenant['id']}/keys", headers=bearer(session),
                     json={"name": f"load-{uuid.uuid4().hex[:6]}"}, timeout=30).json()["key"]
    client = openai.OpenAI(base_url=portal.proxy + "/v1", api_key=key, max_retries=0)
    for _ in range(count):
        client.chat.completions.create(model="chat-small", messages=[{"role": "user", "content": "hi"}], max_tokens=8)


# MARK: - Serving


def test_the_portal_is_served_from_its_own_files_with_strict_headers(portal):
    redirect = httpx.get(portal.proxy + "/portal", timeout=10)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/portal/"
    assert redirect.headers["x-frame-options"] == "DENY"
    page = httpx.get(portal.proxy + "/portal/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                      "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    # The page is never kept (a secret shown once must not come back with Back); a page
    # the browser routes answers the same document.
    assert page.headers["cache-control"] == "no-store"
    assert httpx.get(portal.proxy + "/portal/keys", timeout=10).content == page.content
    script = httpx.get(portal.proxy + "/portal/assets/app.js", timeout=10)
    assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["content-security-policy"] == policy and script.headers["cache-control"] == "no-cache"
    # A current copy of a file is a 304.
    again = httpx.get(portal.proxy + "/portal/assets/app.js", headers={"if-none-match": script.headers["etag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    for missing in ("/portal/assets/nothing.js", "/portal/assets/..%2FPackage.swift", "/portal/assets/.hidden"):
        answer = httpx.get(portal.proxy + missing, timeout=10)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", missing
        assert answer.headers["content-security-policy"] == policy and answer.headers["x-content-type-options"] == "nosniff"


def test_the_portal_fetches_nothing_from_another_origin_and_runs_no_inline_script():
    outside = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|"""
                         r"""(?:from|import)\s*\(?\s*["'](?:https?:)?//|fetch\(\s*["'](?:https?:)?//""")
    files = sorted(PORTAL_FILES.iterdir())
    assert {"index.html", "app.js", "portal.css"} <= {file.name for file in files}
    for file in files:
        text = file.read_text()
        assert outside.search(text) is None, f"{file.name} loads from another origin"
    index = (PORTAL_FILES / "index.html").read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", index) is None, "inline script in index.html"
    assert " style=" not in index and re.search(r"\son[a-z]+=", index) is None


# MARK: - Keys


def test_an_org_user_creates_a_key_sees_it_once_uses_it_and_revokes_it(portal, browser):
    sign_in(browser, portal, portal.user["user"]["email"])
    header = browser.find_element(By.ID, "whoami")
    assert header.find_element(By.CLASS_NAME, "user-name").text == "Uma User"
    assert "org_user" in header.find_element(By.CLASS_NAME, "user-role").text.replace(" ", "_").lower()
    assert header.find_element(By.CLASS_NAME, "tenant-name").text == "Acme Research"
    open_page(browser, portal, "keys")
    browser.find_element(By.ID, "key-name").send_keys(EVIL_KEY_NAME)
    browser.find_element(By.ID, "key-create").click()
    secret = wait(browser).until(lambda d: d.find_element(By.ID, "new-key-secret").text.strip())
    assert re.fullmatch(r"sk-sy-[0-9A-Za-z]{43}", secret)
    row = row_of(browser, "keys-table", EVIL_KEY_NAME)
    assert row.find_element(By.CLASS_NAME, "key-status").text.lower() == "active"
    assert secret[:10] in row.find_element(By.CLASS_NAME, "key-prefix").text or \
        row.find_element(By.CLASS_NAME, "key-prefix").text.rstrip("…. ") in secret
    shot(browser, "keys-new-secret")

    client = openai.OpenAI(base_url=portal.proxy + "/v1", api_key=secret, max_retries=0)
    answer = client.chat.completions.create(model="chat-small", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert answer.choices[0].message.content == ANSWER

    # Leaving and coming back with Back, or reloading, shows the key in the list but
    # never its secret again.
    browser.get(portal.proxy + "/portal/usage")
    wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "main#page-usage"))
    browser.back()
    row_of(browser, "keys-table", EVIL_KEY_NAME)
    assert secret not in browser.page_source
    browser.refresh()
    row = row_of(browser, "keys-table", EVIL_KEY_NAME)
    assert secret not in browser.page_source
    assert browser.find_elements(By.ID, "new-key-secret") == []
    assert browser.execute_script("return JSON.stringify(sessionStorage) + JSON.stringify(localStorage)").find(secret) < 0

    row.find_element(By.CLASS_NAME, "key-revoke").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "confirm-dialog").is_displayed())
    shot(browser, "keys-revoke-confirm")
    browser.find_element(By.ID, "confirm-yes").click()
    wait(browser).until(lambda d: row_of(d, "keys-table", EVIL_KEY_NAME)
                        .find_element(By.CLASS_NAME, "key-status").text.lower() == "revoked")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="chat-small", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    # The name was shown as text, never run.
    assert pwned(browser) is None
    shot(browser, "keys")


# MARK: - Usage


def test_the_usage_page_totals_equal_the_reports_api_and_its_csv(portal, browser):
    make_requests(portal, portal.user["token"], 3)
    sign_in(browser, portal, portal.user["user"]["email"])
    open_page(browser, portal, "usage")
    first, last = (browser.find_element(By.ID, name).get_attribute("value") for name in ("usage-from", "usage-to"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", first) and re.fullmatch(r"\d{4}-\d\d-\d\d", last)
    # The page's range is whole UTC days, `to` inclusive.
    start = f"{first}T00:00:00Z"
    end = (datetime.date.fromisoformat(last) + datetime.timedelta(days=1)).isoformat() + "T00:00:00Z"

    def reported() -> dict:
        answer = httpx.get(portal.proxy + "/admin/v1/reports/allocation", headers=bearer(portal.user["token"]), timeout=30,
                           params={"tenant": portal.tenant["id"], "from": start, "to": end, "group_by": "day,model"})
        assert answer.status_code == 200, answer.text
        return answer.json()["totals"][0] if answer.json()["totals"] else {}

    # The usage writer takes a moment; the report counts what the ledger holds.
    deadline = time.monotonic() + PATIENCE
    while reported().get("requests", 0) < 3:
        assert time.monotonic() < deadline, "the requests were never metered"
        time.sleep(0.2)
    totals = reported()
    browser.find_element(By.ID, "usage-apply").click()

    def shown(name: str) -> str:
        return browser.find_element(By.ID, name).get_attribute("data-value")

    wait(browser).until(lambda d: shown("usage-total-requests") == str(totals["requests"]))
    assert shown("usage-total-tokens") == str(totals["prompt_tokens"] + totals["completion_tokens"])
    assert shown("usage-total-cost") == str(totals["cost_micros"])
    assert browser.find_elements(By.CSS_SELECTOR, "svg#usage-chart, #usage-chart svg")
    shot(browser, "usage")

    link = browser.find_element(By.ID, "usage-csv").get_attribute("href")
    assert "format=csv" in link
    download = httpx.get(link, cookies=session_of(browser), timeout=30)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    records = list(csv.DictReader(io.StringIO(download.text, newline="")))
    total_rows = [record for record in records if record["row"] == "total"]
    assert len(total_rows) == 1
    assert int(total_rows[0]["requests"]) == totals["requests"]
    assert int(total_rows[0]["prompt_tokens"]) + int(total_rows[0]["completion_tokens"]) == \
        totals["prompt_tokens"] + totals["completion_tokens"]
    assert int(total_rows[0]["cost_micros"]) == totals["cost_micros"]
    groups = [record for record in records if record["row"] == "group"]
    assert sum(int(record["requests"]) for record in groups) == totals["requests"]


# MARK: - Hosted chat


def chat_turn(driver, prompt: str):
    box = driver.find_element(By.ID, "chat-input")
    box.clear()
    box.send_keys(prompt)
    count = len(driver.find_elements(By.CSS_SELECTOR, "#chat-log .message.assistant"))
    driver.find_element(By.ID, "chat-send").click()
    return wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chat-log .message.assistant")[count:] or None)[0]


def test_hosted_chat_streams_the_answer_stops_on_request_and_is_metered_to_the_user(portal, browser):
    sign_in(browser, portal, portal.user["user"]["email"])
    open_page(browser, portal, "chat")
    models = wait(browser).until(lambda d: [o.get_attribute("value") for o in Select(d.find_element(By.ID, "chat-model")).options] or None)
    assert "chat-small" in models
    Select(browser.find_element(By.ID, "chat-model")).select_by_value("chat-small")
    system = browser.find_element(By.ID, "chat-system")
    system.clear()
    system.send_keys("You are terse.")

    # The upstream holds the rest of the answer until the page has shown the first part.
    message = chat_turn(browser, "[hold] Tell me something")
    content = message.find_element(By.CLASS_NAME, "content")
    wait(browser).until(lambda d: "bold" in content.text)
    partial = content.text
    assert "The end." not in partial and "done" not in message.get_attribute("class").split()
    shot(browser, "chat-streaming")
    portal.upstream.release()
    wait(browser).until(lambda d: "done" in message.get_attribute("class").split())
    final = content.text
    assert final.startswith(partial.strip()) and len(final) > len(partial) and final.endswith("The end.")
    # Markdown is rendered, the HTML in the answer shown as text and never run.
    assert content.find_elements(By.TAG_NAME, "strong")[0].text == "bold"
    assert "<script>window.__pwned = 1</script>" in final and 'onerror="window.__pwned = 2"' in final
    assert content.find_elements(By.CSS_SELECTOR, "script, img, iframe") == []
    assert pwned(browser) is None
    request_id = message.get_attribute("data-request-id")
    event = usage_event(portal, request_id, token=portal.admin["token"])
    assert event["user_id"] == portal.user["user"]["id"] and event["tenant_id"] == portal.tenant["id"]
    assert event["status"] == 200 and event["streamed"] and event["completion_tokens"] == 7
    shot(browser, "chat")

    # Stop aborts the request: the upstream sees the connection close, the ledger an abort.
    message = chat_turn(browser, "[endless] Go on forever")
    wait(browser).until(lambda d: "bold" in message.find_element(By.CLASS_NAME, "content").text)
    assert browser.find_element(By.ID, "chat-stop").is_enabled()
    browser.find_element(By.ID, "chat-stop").click()
    wait(browser).until(lambda d: "stopped" in message.get_attribute("class").split())
    assert portal.upstream.wait_for_abort(PATIENCE)
    event = usage_event(portal, message.get_attribute("data-request-id"), token=portal.admin["token"])
    assert event["client_aborted"] and event["user_id"] == portal.user["user"]["id"]
    assert not browser.find_element(By.ID, "chat-stop").is_enabled()
    # The chat's key is short-lived, and the page keeps no long-lived secret.
    keys = httpx.get(portal.proxy + f"/admin/v1/tenants/{portal.tenant['id']}/keys", headers=bearer(portal.user["token"]),
                     timeout=10).json()["data"]
    chat_keys = [key for key in keys if key["id"] == event["tenant_key_id"]]
    assert chat_keys and chat_keys[0]["expires_at"] is not None
    assert browser.execute_script("return JSON.stringify(localStorage)").find("sk-sy-") < 0
    # Signing out revokes every hosted-chat key of the user, whichever tab made it.
    browser.find_element(By.ID, "signout").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "signin-form").is_displayed())
    keys = httpx.get(portal.proxy + f"/admin/v1/tenants/{portal.tenant['id']}/keys", headers=bearer(portal.user["token"]),
                     timeout=10).json()["data"]
    assert [key["status"] for key in keys if key["name"] == "Hosted chat"] == ["revoked"]
    assert browser.execute_script("return JSON.stringify(sessionStorage)").find("sk-sy-") < 0


# MARK: - Roles


def test_an_org_user_sees_no_admin_pages_and_another_tenant_is_404_from_the_page(portal, browser):
    sign_in(browser, portal, portal.user["user"]["email"])
    pages = {link.get_attribute("data-page") for link in browser.find_elements(By.CSS_SELECTOR, "nav a[data-page]")}
    assert pages == {"keys", "usage", "budget", "chat"}
    for page in ("users", "audit", "system", "capacity"):
        root = open_page(browser, portal, page)
        wait(browser).until(lambda d: "not available" in root.text.lower())
        assert root.find_elements(By.TAG_NAME, "table") == []
    shot(browser, "org-user-admin-page-refused")
    other = portal.other_tenant["id"]
    for path in (f"/admin/v1/tenants/{other}", f"/admin/v1/tenants/{other}/keys", f"/admin/v1/tenants/{other}/users",
                 f"/admin/v1/tenants/{other}/budget", f"/admin/v1/audit?tenant={other}",
                 f"/admin/v1/reports/allocation?tenant={other}"):
        assert fetch_status(browser, path) == 404, path
    assert fetch_status(browser, f"/admin/v1/tenants/{other}/keys", "POST") == 404
    # Its own tenant's admin actions are refused too, not just hidden.
    assert fetch_status(browser, f"/admin/v1/tenants/{portal.tenant['id']}/users") == 403


def test_a_user_name_with_markup_is_shown_as_text(portal, browser):
    evil = invite_user(portal.proxy, portal.tenant["id"], "org_user", email=f"m-{uuid.uuid4().hex[:6]}@acme.example",
                       name=EVIL_USER_NAME, token=portal.admin["token"])
    sign_in(browser, portal, portal.admin["user"]["email"])
    open_page(browser, portal, "users")
    row_of(browser, "users-table", EVIL_USER_NAME)
    assert pwned(browser) is None
    shot(browser, "users")
    browser.find_element(By.ID, "signout").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "signin-form").is_displayed())
    sign_in(browser, portal, evil["user"]["email"])
    assert browser.find_element(By.CSS_SELECTOR, "#whoami .user-name").text == EVIL_USER_NAME
    assert pwned(browser) is None


def test_accepting_an_invite_in_the_page_signs_the_new_user_in(portal, browser):
    email = f"new-{uuid.uuid4().hex[:6]}@acme.example"
    invite = httpx.post(portal.proxy + f"/admin/v1/tenants/{portal.tenant['id']}/invites", headers=bearer(portal.admin["token"]),
                        json={"email": email, "role": "org_user"}, timeout=30).json()
    browser.get(portal.proxy + f"/portal/invite#{invite['token']}")
    wait(browser).until(lambda d: d.find_element(By.ID, "invite-name").is_displayed())
    shot(browser, "invite")
    browser.find_element(By.ID, "invite-name").send_keys("Nina New")
    browser.find_element(By.ID, "invite-password").send_keys("a-long-enough-password")
    browser.find_element(By.ID, "invite-password-again").send_keys("a-long-enough-password")
    browser.find_element(By.ID, "invite-accept").click()
    wait(browser).until(lambda d: d.find_element(By.CSS_SELECTOR, "#whoami .user-name").text == "Nina New")
    # The invite works once.
    again = httpx.post(portal.proxy + f"/auth/invites/{invite['token']}/accept", json={"name": "X", "password": "another-password-1"},
                       timeout=30)
    assert again.status_code == 404


def test_a_wrong_password_shows_the_api_message(portal, browser):
    browser.get(portal.proxy + "/portal/")
    wait(browser).until(lambda d: d.find_element(By.ID, "signin-form").is_displayed())
    browser.find_element(By.ID, "signin-email").send_keys(portal.admin["user"]["email"])
    browser.find_element(By.ID, "signin-password").send_keys("not-the-password-at-all")
    browser.find_element(By.ID, "signin-submit").click()
    wait(browser).until(lambda d: "not right" in d.find_element(By.ID, "signin-error").text)
    shot(browser, "sign-in-failed")


# MARK: - Every page, for the reviewer


def test_every_page_renders_for_the_roles_that_use_it(portal, browser):
    make_requests(portal, portal.admin["token"], 2)
    tenant = portal.tenant["id"]
    httpx.put(portal.proxy + f"/admin/v1/tenants/{tenant}/budget", headers=bearer(portal.admin["token"]), timeout=30,
              json={"period": "month", "limit_tokens": 1_000_000, "limit_micros": 50_000_000, "soft_thresholds": [0.5, 0.8]})
    httpx.post(portal.proxy + f"/admin/v1/tenants/{tenant}/webhooks", headers=bearer(portal.admin["token"]), timeout=30,
               json={"url": "https://hooks.acme.example/switchyard"})
    sign_in(browser, portal, portal.admin["user"]["email"])
    pages = {link.get_attribute("data-page") for link in browser.find_elements(By.CSS_SELECTOR, "nav a[data-page]")}
    assert pages == {"keys", "usage", "budget", "users", "audit", "chat"}
    expected = {
        "keys": "#keys-table", "usage": "#usage-chart", "budget": "#budget-bar", "users": "#users-table",
        "audit": "#audit-table tbody tr", "chat": "#chat-model option",
    }
    for page, selector in expected.items():
        open_page(browser, portal, page)
        wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
        shot(browser, f"org-admin-{page}")
    assert browser.execute_script("return location.pathname") == "/portal/chat"

    browser.find_element(By.ID, "signout").click()
    wait(browser).until(lambda d: d.find_element(By.ID, "signin-form").is_displayed())
    shot(browser, "sign-in")
    sign_in(browser, portal, portal.system_admin_email, SYSTEM_ADMIN_PASSWORD)
    pages = {link.get_attribute("data-page") for link in browser.find_elements(By.CSS_SELECTOR, "nav a[data-page]")}
    assert {"system", "capacity"} <= pages and not pages & {"keys", "chat"}
    for page, selector in {"system": "#system-tenants tbody tr", "capacity": "#provider-keys-table",
                           "audit": "#audit-table tbody tr"}.items():
        open_page(browser, portal, page)
        wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
        shot(browser, f"system-admin-{page}")
    assert row_of(browser, "audit-table", "key_created")
