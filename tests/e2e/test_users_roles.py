"""Users, roles and the audit log, end to end: the permission matrix of the management API
generated cell by cell, an org's whole life through invite mails caught by a real SMTP
server and the official openai SDK, sign-in throttling, secrets that never show, the
portal's cookie and CSRF token, revocation across replicas, and a ledger made before
users existed."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import httpx
import openai
import pytest
from aiosmtpd.controller import Controller

from conftest import (
    ADMIN_TOKEN, BCRYPT_COST, REPO, bearer, binary, free_port, invite_user, org_admin_session, start_deployment, stop,
    tenant_key, wait_for,
)
from test_shared_limits import start_redis

PASSWORD = "correct horse battery staple"
MESSAGES = [{"role": "user", "content": "Tell me about model proxies"}]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def unique_email(prefix: str) -> str:
    return f"{unique(prefix)}@e2e.example"


def login(url: str, address: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(url + "/auth/login", json={"email": address, "password": password}, timeout=30)


def access_token(url: str, session: str, name: str = "e2e") -> str:
    created = httpx.post(url + "/auth/tokens", json={"name": name}, headers=bearer(session), timeout=30)
    assert created.status_code == 201, created.text
    assert created.json()["token"].startswith("sy-pat-")
    return created.json()["token"]


def global_user(url: str, role: str, password: str = PASSWORD) -> tuple[dict, str]:
    """A system_admin or analyst made with the admin token: (user body, session token)."""
    address = unique_email(role.replace("_", "-"))
    made = httpx.post(url + "/admin/v1/users", json={"email": address, "name": f"E2E {role}", "role": role,
                                                     "password": password}, headers=bearer(ADMIN_TOKEN), timeout=30)
    assert made.status_code == 201, made.text
    signed_in = login(url, address, password)
    assert signed_in.status_code == 200, signed_in.text
    return made.json(), signed_in.json()["token"]


def create_tenant(url: str, token: str = ADMIN_TOKEN, tier: str = "enterprise") -> dict:
    made = httpx.post(url + "/admin/v1/tenants", json={"name": unique("org"), "tier": tier}, headers=bearer(token),
                      timeout=30)
    assert made.status_code == 201, made.text
    return made.json()


def audit_entries(url: str, token: str, query: str = "") -> list[dict]:
    """Every page of `GET /admin/v1/audit?<query>`, newest first."""
    entries, cursor = [], None
    while True:
        path = f"/admin/v1/audit?limit=100{'&' + query if query else ''}{f'&cursor={cursor}' if cursor else ''}"
        page = httpx.get(url + path, headers=bearer(token), timeout=30)
        assert page.status_code == 200, page.text
        entries += page.json()["data"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return entries


def wait_until(condition: Callable, timeout: float = 15, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def sdk(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)


def ask(client: openai.OpenAI) -> str:
    completion = client.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=8)
    assert completion.usage.total_tokens > 0
    return completion.choices[0].message.content


@pytest.fixture(scope="module")
def users():
    """One deployment for the matrix, the throttle and the cookie tests. Its tier has a
    monthly quota, so that a tenant's quota can be read."""
    directory = Path(tempfile.mkdtemp(prefix="switchyard-users-"))

    def add_metered_tier(config: dict) -> None:
        config["tiers"].append({"name": "matrix-metered", "priority": 5, "monthly_quota_tokens": 1_000_000,
                                "on_quota_exhausted": "block"})
        # The GPU report needs a pool with a price.
        config["engine_pools"][0]["cost_per_hour"] = 2_000_000

    running = start_deployment(directory, configure=add_metered_tier)
    try:
        yield running
    finally:
        stop(running.serve)
        stop(running.sim)
        shutil.rmtree(directory, ignore_errors=True)


# MARK: - The permission matrix

ANY, OWN, NONE = "any tenant", "own tenant", "no"
GLOBAL_ROLES = ("system_admin", "analyst")

# The README's matrix, row by row: what each role may do, and where.
MATRIX: dict[str, dict[str, str]] = {
    "view system-wide usage": {"system_admin": ANY, "analyst": ANY, "org_admin": NONE, "org_user": NONE},
    "manage models, providers, provider keys, engine pools": {"system_admin": ANY, "analyst": NONE, "org_admin": NONE,
                                                              "org_user": NONE},
    "create / manage tenants": {"system_admin": ANY, "analyst": NONE, "org_admin": NONE, "org_user": NONE},
    "view the org's usage": {"system_admin": ANY, "analyst": ANY, "org_admin": OWN, "org_user": OWN},
    "invite / remove users": {"system_admin": ANY, "analyst": NONE, "org_admin": OWN, "org_user": NONE},
    "set budgets, limits, pinning, webhooks": {"system_admin": ANY, "analyst": NONE, "org_admin": OWN, "org_user": NONE},
    "create a tenant key": {"system_admin": NONE, "analyst": NONE, "org_admin": OWN, "org_user": OWN},
    "view / revoke own keys": {"system_admin": NONE, "analyst": NONE, "org_admin": OWN, "org_user": OWN},
    "view / revoke every key of the org": {"system_admin": ANY, "analyst": NONE, "org_admin": OWN, "org_user": NONE},
    "view the org's audit log": {"system_admin": ANY, "analyst": NONE, "org_admin": OWN, "org_user": NONE},
}


# What names a tenant's resource; {provider_key} names the platform's.
TENANT_PLACEHOLDERS = ("tenant", "budget_key", "own_key", "other_key", "user", "webhook")


@dataclass(frozen=True)
class Route:
    """One route of a matrix row. `path` has placeholders the world fills per attempt
    ({tenant}, {budget_key}, {own_key}, {other_key}, {user}, {webhook}, {provider_key});
    `body` is made afresh per attempt, so writes are safe to repeat. `also` names other
    rows that grant the same request (revoking one's own key is also revoking a key of
    the org). A platform route names no tenant."""

    method: str
    path: str
    body: Optional[Callable[[], object]] = None
    also: tuple[str, ...] = ()
    # Without ?tenant=, an org role's usage is their own tenant's (not 403): it is checked
    # to be scoped so.
    scoped_for_org_roles: bool = False

    @property
    def platform(self) -> bool:
        return not any(f"{{{name}}}" in self.path for name in TENANT_PLACEHOLDERS)

    def label(self) -> str:
        return f"{self.method} {self.path}"


EVERY_KEY, OWN_KEYS = "view / revoke every key of the org", "view / revoke own keys"

ROUTES: dict[str, list[Route]] = {
    "view system-wide usage": [
        Route("GET", "/admin/v1/tenants"),
        Route("GET", "/admin/v1/usage?group_by=tenant", scoped_for_org_roles=True),
        Route("GET", "/admin/v1/reports/allocation?group_by=tenant,model", scoped_for_org_roles=True),
        Route("GET", "/admin/v1/reports/gpu?pool=local-gpu"),
    ],
    "manage models, providers, provider keys, engine pools": [
        Route("GET", "/admin/v1/provider-keys"),
        Route("POST", "/admin/v1/provider-keys",
              lambda: {"provider": "openai", "key": f"sk-test-{uuid.uuid4().hex}", "label": unique("matrix")}),
        Route("GET", "/admin/v1/provider-keys/{provider_key}"),
        Route("POST", "/admin/v1/provider-keys/{provider_key}/drain"),
        Route("GET", "/admin/v1/pools"),
    ],
    "create / manage tenants": [
        Route("POST", "/admin/v1/tenants", lambda: {"name": unique("matrix-org"), "tier": "standard"}),
        Route("POST", "/admin/v1/users",
              lambda: {"email": unique_email("matrix-analyst"), "name": "Matrix", "role": "analyst", "password": PASSWORD}),
        Route("GET", "/admin/v1/users"),
    ],
    "view the org's usage": [
        Route("GET", "/admin/v1/tenants/{tenant}"),
        Route("GET", "/admin/v1/usage?tenant={tenant}"),
        Route("GET", "/admin/v1/reports/allocation?tenant={tenant}&format=csv"),
        Route("GET", "/admin/v1/tenants/{tenant}/budget"),
        Route("GET", "/admin/v1/tenants/{tenant}/quota"),
        Route("GET", "/admin/v1/tenants/{tenant}/metrics"),
        Route("GET", "/admin/v1/keys/{budget_key}/budget"),
    ],
    "invite / remove users": [
        Route("POST", "/admin/v1/tenants/{tenant}/invites", lambda: {"email": unique_email("matrix-invitee"), "role": "org_user"}),
        Route("GET", "/admin/v1/tenants/{tenant}/invites"),
        Route("GET", "/admin/v1/tenants/{tenant}/users"),
        Route("DELETE", "/admin/v1/tenants/{tenant}/users/{user}"),
    ],
    "set budgets, limits, pinning, webhooks": [
        Route("PUT", "/admin/v1/tenants/{tenant}/budget", lambda: {"period": "month", "limit_tokens": 1_000_000}),
        Route("PUT", "/admin/v1/tenants/{tenant}/limits", lambda: {"requests_per_minute": 600}),
        Route("PUT", "/admin/v1/tenants/{tenant}/pinning", lambda: {"chat-small": "local-llama-8b"}),
        Route("PUT", "/admin/v1/keys/{budget_key}/budget", lambda: {"period": "day", "limit_tokens": 500_000}),
        Route("POST", "/admin/v1/tenants/{tenant}/webhooks",
              lambda: {"url": f"https://hooks.example.com/{unique('hook')}", "events": ["budget.exceeded"]}),
        Route("GET", "/admin/v1/tenants/{tenant}/webhooks"),
        Route("DELETE", "/admin/v1/tenants/{tenant}/webhooks/{webhook}"),
    ],
    "create a tenant key": [
        Route("POST", "/admin/v1/tenants/{tenant}/keys", lambda: {"name": unique("matrix-key")}),
    ],
    OWN_KEYS: [
        # An org user's listing holds their own keys only; checked below.
        Route("GET", "/admin/v1/tenants/{tenant}/keys", also=(EVERY_KEY,)),
        Route("DELETE", "/admin/v1/keys/{own_key}", also=(EVERY_KEY,)),
    ],
    EVERY_KEY: [
        Route("DELETE", "/admin/v1/keys/{other_key}"),
    ],
    "view the org's audit log": [
        Route("GET", "/admin/v1/audit?tenant={tenant}"),
    ],
}

assert set(ROUTES) == set(MATRIX)


@dataclass
class Principal:
    name: str
    role: str
    token: str
    user_id: Optional[str] = None
    tenant: Optional[str] = None  # "A" for the org roles

    @property
    def is_global(self) -> bool:
        return self.role in GLOBAL_ROLES


PRINCIPALS = [
    "admin-token", "system_admin-session", "system_admin-pat", "analyst-session", "analyst-pat",
    "org_admin-session", "org_admin-pat", "org_user-session", "org_user-pat",
]


@dataclass
class World:
    """Tenants A and B, the principals (all of A where they belong to a tenant), and the
    standing resources the matrix's routes name."""

    url: str
    tenants: dict[str, str]
    principals: dict[str, Principal]
    # Per tenant: an org admin who owns the keys the routes act on, and a key with a budget.
    keepers: dict[str, str]
    budget_keys: dict[str, str]
    # One connection pool for the matrix's many requests.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def fill(self, route: Route, principal: Principal, side: Optional[str]) -> str:
        """The route's path with fresh or standing resources for this attempt."""
        path = route.path
        if side is not None:
            tenant = self.tenants[side]
            if "{budget_key}" in path and principal.role == "org_user" and principal.tenant == side:
                # An org user sees the budgets of their own keys only: give them one with a budget.
                own = self.key(side, principal.token)
                budgeted = self.http.put(self.url + f"/admin/v1/keys/{own}/budget", headers=bearer(ADMIN_TOKEN),
                                         json={"period": "month", "limit_tokens": 1_000_000})
                assert budgeted.status_code == 200, budgeted.text
                path = path.replace("{budget_key}", own)
            path = path.replace("{tenant}", tenant).replace("{budget_key}", self.budget_keys[side])
            if "{own_key}" in path:
                # A key the principal made, where it can make one; another user's otherwise.
                owner = principal.token if principal.tenant == side else self.keepers[side]
                path = path.replace("{own_key}", self.key(side, owner))
            if "{other_key}" in path:
                path = path.replace("{other_key}", self.key(side, self.keepers[side]))
            if "{user}" in path:
                path = path.replace("{user}", invite_user(self.url, tenant, "org_user", name="Removable")["user"]["id"])
            if "{webhook}" in path:
                made = self.http.post(self.url + f"/admin/v1/tenants/{tenant}/webhooks", headers=bearer(ADMIN_TOKEN),
                                      json={"url": f"http://127.0.0.1:9/{unique('hook')}", "events": ["budget.exceeded"]})
                assert made.status_code == 201, made.text
                path = path.replace("{webhook}", made.json()["id"])
        if "{provider_key}" in path:
            made = self.http.post(self.url + "/admin/v1/provider-keys", headers=bearer(ADMIN_TOKEN),
                                  json={"provider": "openai", "key": f"sk-test-{uuid.uuid4().hex}", "label": unique("pk")})
            assert made.status_code == 201, made.text
            path = path.replace("{provider_key}", made.json()["id"])
        assert "{" not in path, path
        return path

    def key(self, side: str, token: str) -> str:
        made = self.http.post(self.url + f"/admin/v1/tenants/{self.tenants[side]}/keys", json={"name": unique("k")},
                              headers=bearer(token))
        assert made.status_code == 201, made.text
        return made.json()["id"]


@pytest.fixture(scope="module")
def world(users):
    url = users.proxy
    tenants = {side: create_tenant(url, tier="matrix-metered")["id"] for side in ("A", "B")}
    principals = {"admin-token": Principal("admin-token", "system_admin", ADMIN_TOKEN)}
    for role in GLOBAL_ROLES:
        user, session = global_user(url, role)
        principals[f"{role}-session"] = Principal(f"{role}-session", role, session, user["id"])
        principals[f"{role}-pat"] = Principal(f"{role}-pat", role, access_token(url, session), user["id"])
    for role in ("org_admin", "org_user"):
        accepted = invite_user(url, tenants["A"], role, password=PASSWORD)
        session, user_id = accepted["token"], accepted["user"]["id"]
        assert accepted["user"]["role"] == role and accepted["user"]["tenant_id"] == tenants["A"]
        principals[f"{role}-session"] = Principal(f"{role}-session", role, session, user_id, "A")
        principals[f"{role}-pat"] = Principal(f"{role}-pat", role, access_token(url, session), user_id, "A")
        # Each org principal owns a key, so that key listings show whose keys they hold.
        assert httpx.post(url + f"/admin/v1/tenants/{tenants['A']}/keys", json={"name": f"{role} app"},
                          headers=bearer(session), timeout=30).status_code == 201
    assert sorted(principals) == sorted(PRINCIPALS)
    keepers = {side: invite_user(url, tenant, "org_admin", name="Keeper")["token"] for side, tenant in tenants.items()}
    budget_keys = {}
    for side, tenant in tenants.items():
        for path, body in [(f"/admin/v1/tenants/{tenant}/budget", {"period": "month", "limit_tokens": 1_000_000}),
                           (f"/admin/v1/tenants/{tenant}/limits", {"requests_per_minute": 600})]:
            assert httpx.put(url + path, json=body, headers=bearer(ADMIN_TOKEN), timeout=30).status_code == 200
        budget_keys[side] = tenant_key(url, tenant, "budgeted")["id"]
        budgeted = httpx.put(url + f"/admin/v1/keys/{budget_keys[side]}/budget", headers=bearer(ADMIN_TOKEN),
                             json={"period": "day", "limit_tokens": 500_000}, timeout=30)
        assert budgeted.status_code == 200, budgeted.text
    world = World(url, tenants, principals, keepers, budget_keys)
    yield world
    world.http.close()


def expectation(route: Route, action: str, principal: Principal, side: Optional[str]) -> str:
    """"allowed", "denied" (403) or "hidden" (404) for this principal, route and tenant."""
    if not principal.is_global and side is not None and side != principal.tenant:
        # Another tenant's resource: its existence is not confirmed, whatever the role.
        return "hidden"
    grants = [MATRIX[row][principal.role] for row in (action, *route.also)]
    if ANY in grants or (OWN in grants and not principal.is_global and side is not None):
        return "allowed"
    if route.scoped_for_org_roles and not principal.is_global:
        return "scoped"
    return "denied"


def check(world: World, route: Route, action: str, principal: Principal, side: Optional[str]) -> Optional[str]:
    """Issues the route once; returns what was wrong, or None."""
    expected = expectation(route, action, principal, side)
    path = world.fill(route, principal, side)
    body = route.body() if route.body else None
    response = world.http.request(route.method, world.url + path, json=body, headers=bearer(principal.token))
    where = f"{route.label()} on tenant {side or '-'} ({path}): expected {expected}, got {response.status_code} {response.text[:200]}"
    if expected in ("allowed", "scoped"):
        if not 200 <= response.status_code < 300:
            return where
        if expected == "scoped" and response.json().get("tenant") != world.tenants[principal.tenant]:
            return where + " (not scoped to the own tenant)"
        if route.path.endswith("/keys") and route.method == "GET" and principal.role == "org_user":
            owners = {key.get("user_id") for key in response.json()["data"]}
            if owners != {principal.user_id}:
                return where + f" (an org user's listing shows keys of {owners})"
        if route.path.endswith("/keys") and route.method == "GET" and principal.role == "org_admin":
            owners = {key.get("user_id") for key in response.json()["data"]}
            if owners <= {principal.user_id}:
                return where + " (an org admin's listing lacks the other users' keys)"
        return None
    status = 403 if expected == "denied" else 404
    if response.status_code != status:
        return where
    if status == 403 and response.json().get("error", {}).get("code") != "permission_denied":
        return where + " (code is not permission_denied)"
    return None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@pytest.mark.parametrize("principal_name", PRINCIPALS)
@pytest.mark.parametrize("action", list(MATRIX), ids=slug)
def test_the_permission_matrix(world, action, principal_name):
    principal = world.principals[principal_name]
    problems = []
    for route in ROUTES[action]:
        for side in ([None] if route.platform else ["A", "B"]):
            problem = check(world, route, action, principal, side)
            if problem:
                problems.append(problem)
    assert not problems, f"{principal_name} ({principal.role}), '{action}':\n" + "\n".join(problems)


ALL_ROUTES = [(action, route) for action, routes in ROUTES.items() for route in routes]


@pytest.mark.parametrize("action,route", ALL_ROUTES, ids=[f"{slug(a)}:{r.method} {r.path}" for a, r in ALL_ROUTES])
def test_no_or_bad_credentials_are_401(world, action, route):
    anonymous = Principal("anonymous", "system_admin", "")
    path = world.fill(route, anonymous, None if route.platform else "A")
    body = route.body() if route.body else None
    for headers in ({}, bearer("sy-session-" + "x" * 43), bearer("sy-pat-" + "x" * 43), bearer("nope"),
                    {"cookie": "switchyard_session=sy-session-" + "x" * 43}):
        response = world.http.request(route.method, world.url + path, json=body, headers=headers)
        assert response.status_code == 401, (headers, response.status_code, response.text)


def test_the_admin_token_may_not_create_tenant_keys(world):
    refused = httpx.post(world.url + f"/admin/v1/tenants/{world.tenants['A']}/keys", json={"name": "nope"},
                         headers=bearer(ADMIN_TOKEN), timeout=30)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"


# MARK: - Sign-in throttling


def test_five_wrong_passwords_lock_the_account_and_are_audited(users):
    url = users.proxy
    user, _ = global_user(url, "analyst")
    address = user["email"]
    for attempt in range(5):
        wrong = login(url, address, f"wrong password {attempt}")
        assert wrong.status_code == 401, wrong.text
    locked = login(url, address)  # the right password, too late
    assert locked.status_code == 429, locked.text
    assert int(locked.headers["retry-after"]) >= 1
    failed = [entry for entry in audit_entries(url, ADMIN_TOKEN, "action=login_failed") if entry["target"] == address]
    assert len(failed) >= 5
    assert all(entry["actor"]["id"] == user["id"] and entry["actor"]["kind"] == "user" for entry in failed)
    assert "wrong password" not in json.dumps(failed)
    # Another account is not locked by this one's failures.
    _, other = global_user(url, "analyst")
    assert other.startswith("sy-session-")


# MARK: - The portal's cookie and CSRF token


def test_the_session_cookie_is_http_only_strict_and_its_writes_need_the_csrf_token(users):
    url = users.proxy
    tenant = create_tenant(url)["id"]
    address = unique_email("cookie-admin")
    invite_user(url, tenant, "org_admin", email=address, password=PASSWORD)
    signed_in = login(url, address)
    assert signed_in.status_code == 200, signed_in.text
    cookie_header = signed_in.headers["set-cookie"]
    attributes = [part.strip() for part in cookie_header.split(";")]
    assert attributes[0] == f"switchyard_session={signed_in.json()['token']}"
    assert "HttpOnly" in attributes and "SameSite=Strict" in attributes
    cookie = {"cookie": attributes[0]}
    csrf = signed_in.json()["csrf_token"]

    me = httpx.get(url + "/auth/me", headers=cookie, timeout=30)
    assert me.status_code == 200 and me.json()["user"]["email"] == address
    assert httpx.get(url + f"/admin/v1/tenants/{tenant}", headers=cookie, timeout=30).status_code == 200

    path = url + f"/admin/v1/tenants/{tenant}/keys"
    for headers in (cookie, {**cookie, "x-csrf-token": "not-the-token"}):
        refused = httpx.post(path, json={"name": "cookie-key"}, headers=headers, timeout=30)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "csrf_failed"
    allowed = httpx.post(path, json={"name": "cookie-key"}, headers={**cookie, "x-csrf-token": csrf}, timeout=30)
    assert allowed.status_code == 201, allowed.text
    # A bearer token needs no CSRF token: no browser sends it on its own.
    assert httpx.post(path, json={"name": "bearer-key"}, headers=bearer(signed_in.json()["token"]),
                      timeout=30).status_code == 201
    # Signing out ends the session.
    assert httpx.post(url + "/auth/logout", headers={**cookie, "x-csrf-token": csrf}, timeout=30).status_code == 204
    assert httpx.get(url + "/auth/me", headers=cookie, timeout=30).status_code == 401


# MARK: - An org's whole story, mailed invites and the openai SDK


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def invite_token(self, address: str) -> str:
        """The token after '#' in the accept link of the mail sent to `address`."""
        def find():
            with self.lock:
                return [message for recipients, message in self.messages if address in recipients]
        found = wait_until(find, timeout=10)
        assert found, f"no mail reached {address}"
        message = found[-1]
        assert address in message["To"]
        text = message.get_body(preferencelist=("plain",)).get_content()
        link = re.search(r"(https?://\S+/portal/invite)#(sy-invite-[A-Za-z0-9]+)", text)
        assert link, text
        return link.group(2)


@pytest.fixture()
def mailed():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    directory = Path(tempfile.mkdtemp(prefix="switchyard-mail-"))
    try:
        running = start_deployment(directory, environment_overrides={
            "SWITCHYARD_SMTP_URL": f"smtp://127.0.0.1:{controller.port}"})
        try:
            yield running, inbox
        finally:
            stop(running.serve)
            stop(running.sim)
    finally:
        controller.stop()
        shutil.rmtree(directory, ignore_errors=True)


def invite_by_mail(url: str, inbox: Inbox, tenant: str, role: str, token: str) -> tuple[str, str]:
    """Invites `address` as `token`: (address, the token read from the mail)."""
    address = unique_email(role.replace("_", "-"))
    invited = httpx.post(url + f"/admin/v1/tenants/{tenant}/invites", json={"email": address, "role": role},
                         headers=bearer(token), timeout=30)
    assert invited.status_code == 201, invited.text
    body = invited.json()
    assert body["mailed"] is True, body
    assert body["role"] == role and body["email"] == address
    assert body["accept_url"].endswith("/portal/invite#" + body["token"])
    mailed_token = inbox.invite_token(address)
    assert mailed_token == body["token"]
    return address, mailed_token


def accept(url: str, token: str, name: str, password: str) -> dict:
    accepted = httpx.post(url + f"/auth/invites/{token}/accept", json={"name": name, "password": password}, timeout=30)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["object"] == "session" and accepted.json()["token"].startswith("sy-session-")
    return accepted.json()


def test_an_org_from_invite_mail_to_audit_log(mailed):
    deployment, inbox = mailed
    url = deployment.proxy
    secrets: list[str] = []

    # The system admin makes the org and invites its admin, by mail.
    tenant = create_tenant(url)["id"]
    admin_address, admin_invite = invite_by_mail(url, inbox, tenant, "org_admin", ADMIN_TOKEN)
    admin_password = "org admin password " + uuid.uuid4().hex[:8]
    first_session = accept(url, admin_invite, "Olga Admin", admin_password)
    secrets += [admin_invite, admin_password, first_session["token"], first_session["csrf_token"]]
    # The link works once.
    again = httpx.post(url + f"/auth/invites/{admin_invite}/accept", json={"name": "X", "password": admin_password}, timeout=30)
    assert again.status_code == 404

    signed_in = login(url, admin_address, admin_password)
    assert signed_in.status_code == 200, signed_in.text
    org_admin = signed_in.json()
    assert org_admin["user"]["role"] == "org_admin" and org_admin["user"]["tenant_id"] == tenant
    admin_session, admin_id = org_admin["token"], org_admin["user"]["id"]
    secrets += [admin_session, org_admin["csrf_token"]]

    # Two org users, invited by the org admin, each with a key of their own.
    members = []
    for name in ("Uma User", "Ugo User"):
        _, invite = invite_by_mail(url, inbox, tenant, "org_user", admin_session)
        password = f"{name} password {uuid.uuid4().hex[:8]}"
        session = accept(url, invite, name, password)
        assert session["user"]["role"] == "org_user"
        key = httpx.post(url + f"/admin/v1/tenants/{tenant}/keys", json={"name": f"{name} app"},
                         headers=bearer(session["token"]), timeout=30)
        assert key.status_code == 201, key.text
        assert key.json()["user_id"] == session["user"]["id"]
        assert ask(sdk(url, key.json()["key"]))
        members.append({"id": session["user"]["id"], "session": session["token"], "key": key.json()})
        secrets += [invite, password, session["token"], session["csrf_token"], key.json()["key"]]
    first, second = members

    # The second user may not revoke the first's key; the org admin may.
    refused = httpx.delete(url + f"/admin/v1/keys/{first['key']['id']}", headers=bearer(second["session"]), timeout=30)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "permission_denied"
    assert ask(sdk(url, first["key"]["key"]))
    revoked = httpx.delete(url + f"/admin/v1/keys/{first['key']['id']}", headers=bearer(admin_session), timeout=30)
    assert revoked.status_code == 200, revoked.text
    with pytest.raises(openai.AuthenticationError):
        ask(sdk(url, first["key"]["key"]))
    assert ask(sdk(url, second["key"]["key"]))

    # Usage by user, as the org admin.
    def by_user():
        report = httpx.get(url + "/admin/v1/usage?group_by=user", headers=bearer(admin_session), timeout=30)
        assert report.status_code == 200, report.text
        rows = {row["group"]: row for row in report.json()["data"]}
        return rows if all(rows.get(member["id"], {}).get("requests", 0) >= 2 for member in members) else None
    rows = wait_until(by_user)
    assert rows, "usage by user did not show both users' requests"
    # An org user's report holds their own keys' usage only.
    own = httpx.get(url + "/admin/v1/usage?group_by=user", headers=bearer(second["session"]), timeout=30)
    assert own.status_code == 200, own.text
    assert [row["group"] for row in own.json()["data"]] == [second["id"]]

    budget = httpx.put(url + f"/admin/v1/tenants/{tenant}/budget", json={"period": "month", "limit_tokens": 1_000_000},
                       headers=bearer(admin_session), timeout=30)
    assert budget.status_code == 200, budget.text

    # The audit log, as the org admin: who did what, and no secret anywhere in it.
    entries = audit_entries(url, admin_session)
    assert entries and all(entry["tenant_id"] == tenant for entry in entries)

    def one(action: str, **match) -> list[dict]:
        return [entry for entry in entries if entry["action"] == action
                and all(entry["actor"].get(k) == v for k, v in match.items())]

    created = one("key_created", kind="user", role="org_user")
    assert {entry["actor"]["id"] for entry in created} == {first["id"], second["id"]}
    assert {entry["target"] for entry in created} == {first["key"]["id"], second["key"]["id"]}
    revocations = one("key_revoked", id=admin_id, kind="user", role="org_admin")
    assert [entry["target"] for entry in revocations] == [first["key"]["id"]]
    budget_changes = one("budget_changed", id=admin_id, kind="user", role="org_admin")
    assert len(budget_changes) == 1 and budget_changes[0]["payload"]["limit_tokens"] == 1_000_000
    assert len(one("user_invited", kind="user", role="org_admin")) == 2
    assert len(one("user_invited", kind="admin_token")) == 1
    assert {entry["actor"]["id"] for entry in one("invite_accepted")} == {admin_id, first["id"], second["id"]}
    assert one("login", id=admin_id)
    assert all(entry["request_id"] and entry["source_address"] for entry in entries)
    text = json.dumps(entries)
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"secrets in the audit log: {leaked}"
    accepted = one("invite_accepted")
    assert all(entry["payload"].get("password") in (None, "[redacted]") for entry in accepted), accepted

    # The org admin sees their tenant's log only; an org user sees none.
    elsewhere = create_tenant(url)["id"]
    assert httpx.get(url + f"/admin/v1/audit?tenant={elsewhere}", headers=bearer(admin_session), timeout=30).status_code == 404
    denied = httpx.get(url + "/admin/v1/audit", headers=bearer(second["session"]), timeout=30)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "permission_denied"


# MARK: - Secrets stay secret


def test_passwords_and_session_tokens_never_show_in_logs_answers_or_the_database():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-secrets-"))
    running = start_deployment(directory, environment_overrides={"SWITCHYARD_LOG_LEVEL": "debug"})
    secrets: list[str] = []
    try:
        url = running.proxy
        tenant = create_tenant(url)["id"]
        admin_password, user_password = "admin " + uuid.uuid4().hex, "user " + uuid.uuid4().hex
        admin_address = unique_email("secret-admin")
        invited = httpx.post(url + f"/admin/v1/tenants/{tenant}/invites", headers=bearer(ADMIN_TOKEN), timeout=30,
                             json={"email": admin_address, "role": "org_admin"})
        assert invited.status_code == 201
        first = accept(url, invited.json()["token"], "Secret Admin", admin_password)
        second = login(url, admin_address, admin_password).json()
        pat = access_token(url, second["token"], "ci")
        member = invite_user(url, tenant, "org_user", password=user_password)
        key = httpx.post(url + f"/admin/v1/tenants/{tenant}/keys", json={"name": "app"},
                         headers=bearer(member["token"]), timeout=30).json()
        assert ask(sdk(url, key["key"]))
        # A wrong password is a secret too.
        wrong = "wrong " + uuid.uuid4().hex
        assert login(url, admin_address, wrong).status_code == 401
        secrets = [admin_password, user_password, wrong, first["token"], second["token"], member["token"], pat,
                   invited.json()["token"], key["key"]]
        passwords = {admin_password, user_password, wrong}

        answers = {
            "/auth/me (session)": httpx.get(url + "/auth/me", headers=bearer(second["token"]), timeout=30),
            "/auth/me (access token)": httpx.get(url + "/auth/me", headers=bearer(pat), timeout=30),
            "/auth/tokens": httpx.get(url + "/auth/tokens", headers=bearer(second["token"]), timeout=30),
            "tenant users": httpx.get(url + f"/admin/v1/tenants/{tenant}/users", headers=bearer(second["token"]), timeout=30),
            "tenant users (admin token)": httpx.get(url + f"/admin/v1/tenants/{tenant}/users", headers=bearer(ADMIN_TOKEN),
                                                    timeout=30),
            "invites": httpx.get(url + f"/admin/v1/tenants/{tenant}/invites", headers=bearer(ADMIN_TOKEN), timeout=30),
            "keys": httpx.get(url + f"/admin/v1/tenants/{tenant}/keys", headers=bearer(second["token"]), timeout=30),
            "audit": httpx.get(url + "/admin/v1/audit?limit=500", headers=bearer(ADMIN_TOKEN), timeout=30),
        }
        for name, answer in answers.items():
            assert answer.status_code == 200, (name, answer.text)
            leaked = [secret for secret in secrets if secret in answer.text]
            assert not leaked, f"{name} shows {leaked}"
            if name != "audit":
                assert not re.search(r'"(password|password_hash|token)"\s*:', answer.text), (name, answer.text)
        tokens = answers["/auth/tokens"].json()["data"]
        assert [token["name"] for token in tokens] == ["ci"] and pat.startswith(tokens[0]["prefix"])
    finally:
        stop(running.serve)
        stop(running.sim)
    try:
        logs = "".join((directory / name).read_text(errors="replace") for name in ("serve.out", "serve.log"))
        assert "debug" in logs.lower(), "serve did not log at debug level"
        leaked = [secret for secret in secrets if secret in logs]
        assert not leaked, f"the logs show {leaked}"

        # The database, its WAL, and the usage spool beside it (switchyard.sqlite-spool/…).
        stored = b"".join(path.read_bytes() for path in directory.rglob("*")
                          if path.is_file() and path.relative_to(directory).parts[0].startswith("switchyard.sqlite"))
        leaked = [secret for secret in secrets if secret.encode() in stored]
        assert not leaked, f"the database holds {leaked} in plaintext"
        with sqlite3.connect(directory / "switchyard.sqlite") as database:
            hashes = [row[0] for row in database.execute("SELECT password_hash FROM users")]
        assert len(hashes) == 2 and all(value.startswith("$2") for value in hashes), hashes
        assert not passwords & set(hashes)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# MARK: - Revocation across replicas


@pytest.fixture()
def two_replicas():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-revoke-"))
    redis_port, engine_port = free_port(), free_port()
    processes = [start_redis(redis_port, directory)]
    try:
        processes.append(subprocess.Popen(
            [binary(), "sim-engine", "--port", str(engine_port), "--ttft-ms", "0", "--tokens-per-second", "0",
             "--slots", "16"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(f"http://127.0.0.1:{engine_port}/health", processes[-1])
        config = json.loads((REPO / "providers.json").read_text())
        config["engine_pools"][0]["replicas"] = [{"url": f"http://127.0.0.1:{engine_port}/v1", "slots": 16}]
        (directory / "providers.json").write_text(json.dumps(config))
        urls = []
        for index in range(2):
            port = free_port()
            environment = {key: value for key, value in os.environ.items() if not key.endswith("_API_KEY")}
            environment.update({"SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_BCRYPT_COST": BCRYPT_COST})
            processes.append(subprocess.Popen(
                [binary(), "serve", "--config", str(directory / "providers.json"),
                 "--db", str(directory / "switchyard.sqlite"), "--port", str(port),
                 "--redis", f"redis://127.0.0.1:{redis_port}/0"],
                env=environment, stdout=subprocess.DEVNULL, stderr=open(directory / f"serve-{index}.log", "w")))
            urls.append(f"http://127.0.0.1:{port}")
            wait_for(urls[-1] + "/health", processes[-1])
        yield urls
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(directory, ignore_errors=True)


def chat_status(url: str, key: str) -> int:
    return httpx.post(url + "/v1/chat/completions", headers=bearer(key), timeout=30,
                      json={"model": "chat-small", "messages": MESSAGES, "max_tokens": 2}).status_code


def test_a_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second(two_replicas):
    first, second = two_replicas
    tenant = create_tenant(first)["id"]
    key = tenant_key(first, tenant, "replicated")
    # Both replicas have the key in their caches.
    assert chat_status(first, key["key"]) == 200
    assert chat_status(second, key["key"]) == 200
    revoked = httpx.delete(first + f"/admin/v1/keys/{key['id']}", headers=bearer(org_admin_session(first, tenant)),
                           timeout=30)
    assert revoked.status_code == 200, revoked.text
    revoked_at = time.monotonic()
    assert chat_status(first, key["key"]) == 401
    statuses = []
    while time.monotonic() - revoked_at <= 1.0:
        statuses.append(chat_status(second, key["key"]))
        if statuses[-1] == 401:
            break
        time.sleep(0.05)
    refused_after = time.monotonic() - revoked_at
    assert statuses and statuses[-1] == 401, f"replica 2 still served the key {refused_after:.2f} s after it was revoked"
    assert set(statuses) <= {200, 401}


# MARK: - A ledger from before users


def test_a_ledger_made_before_users_migrates_with_its_tenants_keys_and_usage():
    fixture = json.loads((REPO / "Tests" / "Fixtures" / "ledger" / "legacy-v4.json").read_text())
    directory = Path(tempfile.mkdtemp(prefix="switchyard-legacy-"))
    shutil.copyfile(REPO / "Tests" / "Fixtures" / "ledger" / "legacy-v4.sqlite", directory / "switchyard.sqlite")
    token = fixture["admin_token"]
    running = start_deployment(directory, environment_overrides={
        "SWITCHYARD_ADMIN_TOKEN": token, fixture["master_key_env"]: fixture["master_key_hex"]})
    try:
        url = running.proxy
        headers = bearer(token)
        assert httpx.get(url + "/admin/v1/tenants", headers=bearer(ADMIN_TOKEN), timeout=30).status_code == 401

        listed = httpx.get(url + "/admin/v1/tenants", headers=headers, timeout=30)
        assert listed.status_code == 200, listed.text
        tenants = {tenant["id"]: tenant for tenant in listed.json()["data"]}
        for expected in fixture["tenants"].values():
            shown = tenants[expected["id"]]
            for name, value in expected["admin_body"].items():
                assert shown[name] == value, (expected["name"], name, shown[name], value)

        for tenant_id in tenants:
            keys = httpx.get(url + f"/admin/v1/tenants/{tenant_id}/keys", headers=headers, timeout=30)
            assert keys.status_code == 200, keys.text
            shown = {key["id"]: key for key in keys.json()["data"]}
            expected = [key for key in fixture["tenant_keys"] if key["tenant_id"] == tenant_id]
            assert set(shown) == {key["id"] for key in expected}
            for key in expected:
                for name in ("name", "prefix", "status", "created_at", "revoked_at"):
                    assert shown[key["id"]].get(name) == key[name], (key["id"], name, shown[key["id"]].get(name))
                assert shown[key["id"]].get("user_id") is None
        assert next(key for key in fixture["tenant_keys"] if key["id"] == fixture["revoked_key_id"])["status"] == "revoked"

        usage = httpx.get(url + "/admin/v1/usage?group_by=tenant", headers=headers, timeout=30)
        assert usage.status_code == 200, usage.text
        rows = {row["group"]: row for row in usage.json()["data"]}
        for expected in fixture["tenants"].values():
            row = rows[expected["id"]]
            totals = expected["usage"]
            assert (row["requests"], row["prompt_tokens"], row["completion_tokens"], row["cost_micros"]) == (
                totals["events"], totals["prompt_tokens"], totals["completion_tokens"], totals["cost_micros"]), row
        assert sum(row["requests"] for row in rows.values()) == fixture["usage_events_total"]

        live = next(key for key in fixture["tenant_keys"] if key["name"] == "alpha-live")
        assert ask(sdk(url, live["secret"]))
        revoked = next(key for key in fixture["tenant_keys"] if key["id"] == fixture["revoked_key_id"])
        assert revoked.get("secret") is None or chat_status(url, revoked["secret"]) == 401

        # The migrated ledger takes users: an org admin of a legacy tenant signs in and sees its keys.
        alpha = fixture["tenants"]["alpha"]["id"]
        accepted = invite_user(url, alpha, "org_admin", token=token)
        listed_keys = httpx.get(url + f"/admin/v1/tenants/{alpha}/keys", headers=bearer(accepted["token"]), timeout=30)
        assert listed_keys.status_code == 200 and len(listed_keys.json()["data"]) == 2
    finally:
        stop(running.serve)
        stop(running.sim)
        shutil.rmtree(directory, ignore_errors=True)
