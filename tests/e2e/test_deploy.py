"""The operator files in deploy/: Prometheus alert rules and scrape config that promtool
accepts (and whose unit tests pass), Grafana dashboards that are importable JSON, and —
against a real `switchyard serve` that has served traffic — every metric and label those
queries use exists on its GET /metrics."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import ADMIN_TOKEN, REPO, free_port, start_deployment, stop, tenant_key
from test_shared_limits import start_redis
from scripted_provider import ScriptedProvider

DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "switchyard-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "switchyard-alerts.test.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARDS = {
    "switchyard-ops": DEPLOY / "grafana" / "switchyard-operations.json",
    "switchyard-cost": DEPLOY / "grafana" / "switchyard-cost.json",
}
HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}
SCRIPTED_KEY = "sk-scripted-deploy-aaaaaaaaaaaaaaaaDEPL"

# Labels Prometheus adds to every scraped series, and those of the dashboards' own making.
TARGET_LABELS = {"job", "instance"}
METRIC = re.compile(r"\bswitchyard_[a-z0-9_]+")
SELECTOR = re.compile(r"\b(switchyard_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
LABEL_VALUES = re.compile(r"label_values\(\s*(switchyard_[a-z0-9_]+)\s*(?:\{[^}]*\})?\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: it comes with Debian's prometheus package "
                    "(apt-get install -y --no-install-recommends prometheus)")
    return path


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard(uid: str) -> dict:
    return json.loads(DASHBOARDS[uid].read_text())


def panels(board: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_queries(board: dict) -> list[tuple[str, str, str]]:
    """(where, expr, legend) of every panel target."""
    return [(f"{board['uid']} panel {panel['title']!r}", target["expr"], target.get("legendFormat", ""))
            for panel in panels(board) for target in panel.get("targets", [])]


def variable_queries(board: dict) -> list[tuple[str, str]]:
    found = []
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append((f"{board['uid']} variable {variable['name']}", query["query"] if isinstance(query, dict) else query))
    return found


def every_query() -> list[tuple[str, str, str]]:
    queries = [(f"rule {rule['alert']}", rule["expr"], "") for rule in rules()]
    for uid in DASHBOARDS:
        queries += dashboard_queries(dashboard(uid))
    return queries


# MARK: - The files alone


def test_promtool_accepts_the_alert_rules():
    checked = run_promtool("check", "rules", str(RULES), cwd=RULES.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_promtool_accepts_the_scrape_config_which_loads_the_rules():
    checked = run_promtool("check", "config", str(PROMETHEUS_CONFIG), cwd=PROMETHEUS_CONFIG.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == [RULES.name]
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"]


def test_the_alert_rules_unit_tests_pass():
    tested = run_promtool("test", "rules", str(RULE_TESTS), cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_duration_severity_summary_and_description():
    names = set()
    for rule in rules():
        assert "alert" in rule, f"only alerting rules belong here: {rule}"
        assert rule["alert"] not in names, f"{rule['alert']} is defined twice"
        names.add(rule["alert"])
        assert "for" in rule, f"{rule['alert']} has no `for`"
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]
    # What operators were promised: error rate, pool saturation and queue wait, provider
    # keys, usage backlog, Redis.
    assert {
        "SwitchyardHighErrorRate", "SwitchyardEnginePoolSaturated", "SwitchyardQueueWaitOverContract",
        "SwitchyardProviderKeyDisabled", "SwitchyardDeploymentKeysExhausted", "SwitchyardUsageBacklogGrowing",
        "SwitchyardUsageBacklogHigh", "SwitchyardUsageWriterStalled", "SwitchyardRedisUnreachable",
    } <= names
    tested = RULE_TESTS.read_text()
    untested = [name for name in names if f"alertname: {name}\n" not in tested]
    assert not untested, f"alerts without a promtool unit test: {untested}"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_the_dashboards_are_importable_grafana_json(uid):
    board = dashboard(uid)
    assert board["uid"] == uid and board["title"]
    assert board["schemaVersion"] == 39
    (source,) = [v for v in board["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    assert board["panels"], f"{uid} has no panels"
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), f"{uid} repeats panel ids"
    for panel in panels(board):
        where = f"{uid} panel {panel.get('title')!r}"
        assert panel["title"] and panel["type"], where
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, where
        assert panel["targets"], f"{where} has no targets"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), where
        for target in panel["targets"]:
            assert target["expr"].strip(), f"{where} has a target without expr"
            assert METRIC.search(target["expr"]), f"{where} queries no Switchyard metric: {target['expr']}"
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", where
            assert target["expr"].count("(") == target["expr"].count(")"), f"{where}: unbalanced {target['expr']}"
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${DS_PROMETHEUS}", variable["name"]


# MARK: - Against a running server


def deploy_configuration(config: dict, provider_port: int, engine_url: str) -> None:
    """The shipped providers.json plus what makes every metric appear: a scripted external
    provider (key events, reported capacity), a one-slot engine pool that spills over to
    it, and a tier whose tiny quota throttles and then refuses."""
    config["providers"] += [
        {"id": "deploy-scripted", "kind": "openai", "base_url": f"http://127.0.0.1:{provider_port}/v1",
         "api_key_env": "SY_DEPLOY_SCRIPTED_KEY"},
        {"id": "deploy-engine", "kind": "engine", "engine_pool": "deploy-one-slot"},
    ]
    config["engine_pools"].append({"id": "deploy-one-slot", "max_queue": 16, "replicas": [{"url": engine_url, "slots": 1}]})
    config["deployments"] += [
        {"id": "deploy-scripted-mini", "provider": "deploy-scripted", "model": "gpt-4o-mini"},
        {"id": "deploy-local", "provider": "deploy-engine", "model": "meta-llama/Llama-3.1-8B-Instruct"},
    ]
    config["models"] += [
        {"name": "chat-scripted", "routes": ["deploy-scripted-mini"]},
        {"name": "chat-spill", "routes": ["deploy-local", "deploy-scripted-mini"]},
    ]
    config["prices"]["deploy-scripted-mini"] = {"input_per_million": 150000, "output_per_million": 600000}
    config["prices"]["deploy-local"] = {"input_per_million": 50000, "output_per_million": 150000}
    config["tiers"] += [
        {"name": "deploy-spiller", "priority": 60, "spill_over": "when_saturated", "spill_after_ms": 0,
         "max_spill_price_per_million": 1000000},
        {"name": "deploy-throttled", "priority": 5, "models": ["chat-small"], "monthly_quota_tokens": 20,
         "on_quota_exhausted": "throttle", "throttled_requests_per_minute": 1},
    ]


def make_key(url: str, tier: str) -> str:
    tenant = httpx.post(url + "/admin/v1/tenants", json={"name": f"deploy-{tier}-{time.monotonic_ns()}", "tier": tier},
                        headers=HEADERS, timeout=30)
    assert tenant.status_code == 201, tenant.text
    return tenant_key(url, tenant.json()["id"], "deploy-e2e")["key"]


def chat(url: str, key: str, model: str = "chat-small", max_tokens: int = 5, stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Tell me about model proxies"}],
            "max_tokens": max_tokens, "stream": stream}
    return httpx.post(url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=60)


def pool(url: str, pool_id: str) -> dict:
    listed = httpx.get(url + "/admin/v1/pools", headers=HEADERS, timeout=10).json()["data"]
    return next(entry for entry in listed if pool_id in (entry.get("id"), entry.get("name")))


def send_malformed_request(url: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.fixture(scope="module")
def exercised():
    """The /metrics text of a deployment that has served chat completions (engine and
    external, streamed and not), cooled a provider key down, spilled a request over,
    throttled and refused a spent quota, and closed a malformed connection."""
    directory = Path(tempfile.mkdtemp(prefix="switchyard-deploy-"))
    provider = ScriptedProvider()
    provider_port = provider.start()
    running = None
    try:
        # 200 tokens/s: a 600-token answer holds an engine slot for 3 s.
        engine_url: list[str] = []

        def configure(config: dict) -> None:
            engine_url.append(config["engine_pools"][0]["replicas"][0]["url"])
            deploy_configuration(config, provider_port, engine_url[0])

        # With tenant labels, so the dashboards' per-tenant panels are checked too.
        running = start_deployment(directory, tokens_per_second="200", configure=configure,
                                   serve_args=("--metrics-tenant-labels",),
                                   environment_overrides={"SY_DEPLOY_SCRIPTED_KEY": SCRIPTED_KEY})
        url = running.proxy

        # Chat completions on the engine pool, as in test_openai_sdk.
        enterprise = make_key(url, "enterprise")
        for stream in (False, True):
            answer = chat(url, enterprise, stream=stream)
            assert answer.status_code == 200, answer.text

        # An external provider that rate-limits once: the key cools down, the request is
        # retried after the provider's delay and served.
        provider.script(SCRIPTED_KEY, "429", retry_after=1, times=1)
        answer = chat(url, enterprise, model="chat-scripted")
        assert answer.status_code == 200, answer.text

        # A saturated one-slot pool spills a request of a spilling tier over.
        spiller = make_key(url, "deploy-spiller")
        assert chat(url, spiller, model="chat-spill").status_code == 200  # measures the service time
        holder = threading.Thread(target=lambda: chat(url, spiller, model="chat-spill", max_tokens=600), daemon=True)
        holder.start()
        deadline = time.monotonic() + 10
        while pool(url, "deploy-one-slot")["in_flight"] < 1:
            assert time.monotonic() < deadline, "the holding request never took the slot"
            time.sleep(0.02)
        spilled = chat(url, spiller, model="chat-spill")
        assert spilled.status_code == 200, spilled.text
        holder.join(timeout=30)

        # A tier quota that throttles once spent, then refuses beyond the throttled rate.
        throttled = make_key(url, "deploy-throttled")
        for _ in range(20):
            answer = chat(url, throttled)
            if answer.status_code != 200:
                break
        assert answer.status_code == 429 and answer.json()["error"]["code"] == "quota_exhausted", answer.text

        # A connection Switchyard closes itself.
        assert b" 400 " in send_malformed_request(url).split(b"\r\n", 1)[0] + b" "

        metrics = httpx.get(url + "/metrics", timeout=10)
        assert metrics.status_code == 200
        yield metrics.text
    finally:
        if running is not None:
            stop(running.serve)
            stop(running.sim)
        provider.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def with_redis(exercised):
    """The exercised server's /metrics, then that of a replica started with --redis (the
    figures only such a replica has, as switchyard_redis_up)."""
    directory = Path(tempfile.mkdtemp(prefix="switchyard-deploy-redis-"))
    redis_port = free_port()
    redis = start_redis(redis_port, directory)
    running = None
    try:
        running = start_deployment(directory, serve_args=("--redis", f"redis://127.0.0.1:{redis_port}/0", "--meter"))
        metrics = httpx.get(running.proxy + "/metrics", timeout=10)
        assert metrics.status_code == 200
        assert re.search(r"^switchyard_redis_up 1(\.0)?$", metrics.text, re.MULTILINE), metrics.text
        yield exercised + "\n" + metrics.text
    finally:
        if running is not None:
            stop(running.serve)
            stop(running.sim)
        stop(redis)
        shutil.rmtree(directory, ignore_errors=True)


def exposition(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """The families' types (from `# TYPE` lines) and each sample name's label names."""
    types: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name] = kind
        elif line and not line.startswith("#"):
            matched = sample.match(line)
            assert matched, f"unparsable /metrics line: {line!r}"
            names = labels.setdefault(matched.group(1), set())
            names.update(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', matched.group(2) or ""))
    return types, labels


def family_of(name: str, types: dict[str, str]) -> str:
    """The family a sample name belongs to: a histogram's _bucket, _sum and _count are
    its own family's."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if name.endswith(suffix) and types.get(base) in {"histogram", "summary"}:
            return base
    return name


def test_the_exercised_server_shows_what_the_fixture_did(exercised):
    """Guards the fixture: each kind of traffic left its mark (otherwise the checks
    below would pass for the wrong reason or fail obscurely)."""
    assert re.search(r'switchyard_provider_key_events_total\{event="cooldown",provider="deploy-scripted",key="env:deploy-scripted"\} [1-9]', exercised), \
        [line for line in exercised.splitlines() if "provider_key" in line]
    assert re.search(r'switchyard_spillovers_total\{model="chat-spill",deployment="deploy-scripted-mini"\} 1', exercised)
    assert 'switchyard_throttled_requests_total{tier="deploy-throttled"}' in exercised
    assert 'switchyard_budget_refusals_total{tier="deploy-throttled",code="quota_exhausted",throttled="true"} 1' in exercised
    assert re.search(r'switchyard_connections_closed_total\{reason="malformed_request"\} [1-9]', exercised)
    assert 'switchyard_upstream_ratelimit_remaining{deployment="deploy-scripted-mini",window="requests"}' in exercised
    # The scripted key cooled down for 1 s and is back: available again at this scrape.
    assert 'switchyard_provider_keys{deployment="deploy-scripted-mini",provider="deploy-scripted",state="available"} 1.0' in exercised, \
        [line for line in exercised.splitlines() if "provider_keys" in line]


def test_every_metric_the_dashboards_and_rules_query_is_on_metrics(with_redis):
    types, labels = exposition(with_redis)
    queries = every_query()
    assert len(queries) > 40
    missing = []
    for where, expr, _ in queries:
        for name in set(METRIC.findall(expr)):
            family = family_of(name, types)
            if name not in labels or family not in types:
                missing.append(f"{where}: {name}")
    for uid in DASHBOARDS:
        for where, query in variable_queries(dashboard(uid)):
            for name in set(METRIC.findall(query)):
                if name not in labels:
                    missing.append(f"{where}: {name}")
    assert not missing, "queried but not on /metrics:\n" + "\n".join(sorted(missing))
    # histogram_quantile reads buckets of histograms only.
    for where, expr, _ in queries:
        for name in re.findall(r"\b(switchyard_[a-z0-9_]+_bucket)\b", expr):
            assert types.get(name.removesuffix("_bucket")) == "histogram", f"{where}: {name} is not a histogram's buckets"
        for name in set(METRIC.findall(expr)):
            if types.get(name) == "histogram":
                pytest.fail(f"{where}: {name} is a histogram family; query its _bucket, _sum or _count")


def test_every_label_the_dashboards_and_rules_use_is_on_metrics(with_redis):
    _, labels = exposition(with_redis)
    wrong = []
    for where, expr, legend in every_query():
        used = set(METRIC.findall(expr))
        known = set(TARGET_LABELS).union(*(labels.get(name, set()) for name in used))
        for name, matchers in SELECTOR.findall(expr):
            for label in MATCHER.findall(matchers):
                if label not in labels.get(name, set()) | TARGET_LABELS:
                    wrong.append(f"{where}: {name} has no label {label}")
        for group in GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in group.split(","))):
                if label not in known:
                    wrong.append(f"{where}: grouping by {label}, which none of {sorted(used)} has")
        for label in LEGEND.findall(legend):
            if label not in known:
                wrong.append(f"{where}: legend shows {label}, which none of {sorted(used)} has")
    for uid in DASHBOARDS:
        for where, query in variable_queries(dashboard(uid)):
            assert LABEL_VALUES.search(query), f"{where}: not a label_values query this test reads: {query}"
            for name, label in LABEL_VALUES.findall(query):
                if label not in labels.get(name, set()) | TARGET_LABELS:
                    wrong.append(f"{where}: {name} has no label {label}")
    assert not wrong, "\n".join(wrong)
