"""Per-tenant figures, live: `GET /admin/v1/tenants/{id}/metrics` while a real
`switchyard serve` schedules requests on a one-slot engine pool, and the bounded `tenant`
label of `--metrics-tenant-labels` on `/metrics`. Requests go through the official openai
SDK."""

from __future__ import annotations

import re
import threading
import time

import httpx
import openai
import pytest

from conftest import ADMIN_TOKEN, bearer, invite_user, running_deployment, tenant_key

# The engine paces tokens so a request holds the pool's one slot for a while.
TOKENS_PER_SECOND = "40"
LABEL_LIMIT = 2


def one_slot(config: dict) -> None:
    for pool in config["engine_pools"]:
        for replica in pool["replicas"]:
            replica["slots"] = 1
    # A tier that waits as long as it takes and never spills: its requests queue.
    config["tiers"].append({"name": "e2e-queue", "priority": 10})


@pytest.fixture(scope="module")
def proxy():
    with running_deployment(
        "switchyard-tenant-metrics-", tokens_per_second=TOKENS_PER_SECOND, configure=one_slot,
        serve_args=("--metrics-tenant-labels", "--metrics-tenant-limit", str(LABEL_LIMIT)),
    ) as running:
        yield running


def new_tenant(url: str, tier: str = "e2e-queue") -> tuple[str, openai.OpenAI]:
    response = httpx.post(url + "/admin/v1/tenants", json={"name": f"metrics-{time.monotonic_ns()}", "tier": tier},
                          headers=bearer(ADMIN_TOKEN), timeout=10)
    assert response.status_code == 201, response.text
    tenant_id = response.json()["id"]
    key = tenant_key(url, tenant_id)["key"]
    return tenant_id, openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)


def tenant_metrics(url: str, tenant_id: str, token: str = ADMIN_TOKEN) -> dict:
    response = httpx.get(url + f"/admin/v1/tenants/{tenant_id}/metrics", headers=bearer(token), timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def ask(client: openai.OpenAI, max_tokens: int, stream: bool = False) -> dict:
    """One chat completion; its usage."""
    if stream:
        usage = None
        for chunk in client.chat.completions.create(
            model="chat-small", messages=[{"role": "user", "content": "hi"}], max_tokens=max_tokens, stream=True,
            stream_options={"include_usage": True},
        ):
            usage = chunk.usage or usage
        return usage.model_dump()
    return client.chat.completions.create(
        model="chat-small", messages=[{"role": "user", "content": "hi"}], max_tokens=max_tokens,
    ).usage.model_dump()


def poll(condition, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_the_tenant_metrics_show_requests_tokens_errors_and_decode_time(proxy):
    tenant_id, client = new_tenant(proxy.proxy)
    before = tenant_metrics(proxy.proxy, tenant_id)
    assert before["object"] == "tenant.metrics" and before["tenant_id"] == tenant_id
    assert before["last_minute"]["requests"] == 0 and before["in_flight"] == 0 and before["queued"] == 0
    assert before["queue_position"] is None and before["predicted_start_ms"] is None
    assert before["decode_time_ms"] is None

    usages = [ask(client, 4), ask(client, 6), ask(client, 8, stream=True)]
    # An unknown model is refused before admission; it still counts, as an error.
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    error_type = refused.value.body["type"]

    figures = poll(lambda: (m := tenant_metrics(proxy.proxy, tenant_id))["last_minute"]["requests"] == 4 and m,
                   "the four requests to be counted")
    prompt = sum(usage["prompt_tokens"] for usage in usages)
    completion = sum(usage["completion_tokens"] for usage in usages)
    for window in ("last_minute", "last_hour"):
        assert figures[window]["requests"] == 4
        assert figures[window]["prompt_tokens"] == prompt
        assert figures[window]["completion_tokens"] == completion
        assert figures[window]["total_tokens"] == prompt + completion
        assert figures[window]["errors"] == {error_type: 1}
    # Only the streamed answer decodes observably: 8 tokens at 40 a second is about 175 ms.
    assert figures["decode_time_ms"] is not None and 50 <= figures["decode_time_ms"] <= 5_000
    assert figures["in_flight"] == 0 and figures["queued"] == 0


def test_the_tenant_metrics_show_the_oldest_waiting_requests_place_in_line(proxy):
    holder_id, holder = new_tenant(proxy.proxy)
    first_id, first = new_tenant(proxy.proxy)
    second_id, second = new_tenant(proxy.proxy)
    # A request measures how long a slot is held, so starts can be predicted.
    ask(holder, 2)
    failures: list[BaseException] = []

    def run(client: openai.OpenAI, max_tokens: int) -> None:
        try:
            ask(client, max_tokens)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(holder, 400))]
    threads[0].start()
    poll(lambda: tenant_metrics(proxy.proxy, holder_id)["in_flight"] == 1, "the holder to take the slot")
    # `first` waits before `second`, both in one band: `first` is next, `second` after it.
    for client, tenant_id, count in ((first, first_id, 1), (second, second_id, 2)):
        for _ in range(count):
            thread = threading.Thread(target=run, args=(client, 2))
            thread.start()
            threads.append(thread)
        poll(lambda: tenant_metrics(proxy.proxy, tenant_id)["queued"] == count, "the requests to queue")
    try:
        ahead = tenant_metrics(proxy.proxy, first_id)
        behind = tenant_metrics(proxy.proxy, second_id)
        assert ahead["queued"] == 1 and ahead["in_flight"] == 0
        assert ahead["queue_position"] == 1
        assert behind["queued"] == 2 and behind["queue_position"] == 2
        assert ahead["queue_pool"] == behind["queue_pool"] == "local-gpu"
        assert ahead["predicted_start_ms"] is not None and behind["predicted_start_ms"] is not None
        # Two slots freed come later than one.
        assert behind["predicted_start_ms"] >= ahead["predicted_start_ms"]
        assert ahead["queued_for_ms"] >= 0
        holding = tenant_metrics(proxy.proxy, holder_id)
        assert holding["in_flight"] == 1 and holding["queued"] == 0 and holding["queue_position"] is None
    finally:
        for thread in threads:
            thread.join(timeout=60)
    assert not failures, failures
    after = tenant_metrics(proxy.proxy, second_id)
    assert after["queued"] == 0 and after["in_flight"] == 0 and after["queue_position"] is None
    assert after["last_minute"]["requests"] == 2


def test_a_rate_limited_request_counts_as_an_error_of_its_type(proxy):
    tenant_id, client = new_tenant(proxy.proxy, tier="e2e-limited")
    ask(client, 2)
    ask(client, 2)
    with pytest.raises(openai.RateLimitError) as limited:
        ask(client, 2)
    figures = poll(lambda: (m := tenant_metrics(proxy.proxy, tenant_id))["last_minute"]["requests"] == 3 and m,
                   "the three requests to be counted")
    assert figures["last_minute"]["errors"] == {limited.value.body["type"]: 1}


def test_an_org_user_sees_their_own_tenants_figures_only(proxy):
    own_id, _ = new_tenant(proxy.proxy)
    other_id, _ = new_tenant(proxy.proxy)
    user = invite_user(proxy.proxy, own_id, "org_user")["token"]
    assert tenant_metrics(proxy.proxy, own_id, token=user)["tenant_id"] == own_id
    # Another tenant's figures are answered as if it did not exist.
    hidden = httpx.get(proxy.proxy + f"/admin/v1/tenants/{other_id}/metrics", headers=bearer(user), timeout=10)
    assert hidden.status_code == 404
    assert httpx.get(proxy.proxy + f"/admin/v1/tenants/{own_id}/metrics", timeout=10).status_code == 401


def label_values(text: str, metric: str) -> set[str]:
    return set(re.findall(metric + r'\{[^}]*tenant="([^"]*)"', text))


def requests_by_tenant(text: str) -> dict[str, float]:
    """switchyard_upstream_requests_total summed by its tenant label."""
    counts: dict[str, float] = {}
    for tenant, value in re.findall(r'^switchyard_upstream_requests_total\{[^}]*tenant="([^"]*)"\} (\S+)$', text, re.MULTILINE):
        counts[tenant] = counts.get(tenant, 0) + float(value)
    return counts


def test_tenant_labels_are_bounded_and_the_rest_fold_into_other(proxy):
    before = requests_by_tenant(httpx.get(proxy.proxy + "/metrics", timeout=10).text)
    tenants = [new_tenant(proxy.proxy) for _ in range(LABEL_LIMIT + 1)]
    for _, client in tenants:
        ask(client, 2)
    # Each request is counted once, under its tenant's own label or under "other".
    text = poll(lambda: (t := httpx.get(proxy.proxy + "/metrics", timeout=10).text)
                and sum(requests_by_tenant(t).values()) - sum(before.values()) == len(tenants) and t,
                "the requests to be counted")
    after = requests_by_tenant(text)
    own = [tenant_id for tenant_id, _ in tenants if tenant_id in after]
    assert len(own) < len(tenants), "more tenants labelled than --metrics-tenant-limit"
    for tenant_id in own:
        assert after[tenant_id] - before.get(tenant_id, 0) == 1
    assert after["other"] - before.get("other", 0) == len(tenants) - len(own)
    for metric in ("switchyard_upstream_requests_total", "switchyard_tokens_total", "switchyard_queue_wait_seconds_count",
                   "switchyard_queue_depth"):
        values = label_values(text, metric)
        assert "other" in values, metric
        assert len(values - {"other"}) <= LABEL_LIMIT, (metric, values)
    # The request duration histograms stay unlabelled by tenant.
    assert not label_values(text, "switchyard_request_duration_seconds_bucket")


def test_the_cli_shows_a_tenants_figures_by_name(proxy):
    name = f"cli-metrics-{time.monotonic_ns()}"
    response = httpx.post(proxy.proxy + "/admin/v1/tenants", json={"name": name, "tier": "e2e-queue"},
                          headers=bearer(ADMIN_TOKEN), timeout=10)
    tenant_id = response.json()["id"]
    client = openai.OpenAI(base_url=proxy.proxy + "/v1", api_key=tenant_key(proxy.proxy, tenant_id)["key"], max_retries=0)
    usage = ask(client, 5)
    poll(lambda: tenant_metrics(proxy.proxy, tenant_id)["last_minute"]["requests"] == 1, "the request to be counted")
    figures = proxy.cli_json("tenant", "metrics", "--tenant", name)
    assert figures["tenant_id"] == tenant_id and figures["last_hour"]["completion_tokens"] == usage["completion_tokens"]
    table = proxy.cli("tenant", "metrics", "--tenant", name).stdout
    lines = table.splitlines()
    assert lines[0] == f"Tenant {tenant_id}:"
    assert lines[1].split() == ["WINDOW", "REQUESTS", "PROMPT_TOKENS", "COMPLETION_TOKENS", "ERRORS", "DECODE_TIME_MS"]
    assert lines[2].split()[:4] == ["last", "minute", "1", str(usage["prompt_tokens"])]
    assert "In flight: 0; queued: 0" in table
    # An org user of the tenant may ask for their own tenant without naming it.
    user = invite_user(proxy.proxy, tenant_id, "org_user")["token"]
    assert proxy.cli_json("tenant", "metrics", token=user)["tenant_id"] == tenant_id
