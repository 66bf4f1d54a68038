"""Three `llmroute serve` processes sharing one Redis and one PostgreSQL behave as one gateway.

The upstream is a real server that checks the provider key, counts requests per upstream model and
the requests in flight at once; the client spreads its requests over the three instances.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from tests.support.cli import LLMROUTE, Served, llmroute_serve
from tests.support.dbservers import PostgresServer, RedisServer
from tests.support.servers import read_body, serve

UPSTREAM_KEY = "sk-upstream-multi-0123456789"
ADMIN = "sk-admin-multi-0123456789abcdef"
SECRET = "store-secret-multi-0123456789abcdefABCDEF"


@dataclass
class FakeProvider:
    """An OpenAI-compatible upstream: 401 without its key, 500 for models in ``broken``, slow models sleep."""

    served: Counter[str] = field(default_factory=Counter)
    broken: set[str] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = dict(scope["headers"])
        if (
            scope["path"] != "/v1/chat/completions"
            or headers.get(b"authorization") != f"Bearer {UPSTREAM_KEY}".encode()
        ):
            await _reply(send, 401, {"error": {"message": "bad key or path", "type": "invalid_request_error"}})
            return
        model = json.loads(body)["model"]
        self.served[model] += 1
        if model in self.broken:
            await _reply(send, 500, {"error": {"message": "down", "type": "server_error"}})
            return
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if model.startswith("slow"):
                await asyncio.sleep(0.4)
        finally:
            self.in_flight -= 1
        await _reply(
            send,
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": model}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            },
        )


async def _reply(send: Send, status: int, obj: object) -> None:
    data = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


def _config(upstream: str, redis_url: str, dsn: str, prefix: str) -> str:
    return f"""
[state]
backend = "redis"
url = "{redis_url}"
prefix = "{prefix}"
lease_ttl = 5

[store]
backend = "postgres"
dsn = "{dsn}"
secret = "file:store-secret"

[admin]
tokens = ["{ADMIN}"]

[routing]
max_wait = 20

[[tokens]]
name = "limited"
key = "sk-limited-0123456789"
rpm = 30

[[tokens]]
name = "wide"
key = "sk-wide-0123456789"

[[providers]]
name = "up"
api = "openai"
base_url = "{upstream}/v1"
api_key = "{UPSTREAM_KEY}"
cooldown = 60
max_retries = 0

[[providers]]
name = "slowp"
api = "openai"
base_url = "{upstream}/v1"
api_key = "{UPSTREAM_KEY}"
max_in_flight = 4

[[models]]
name = "m"
provider = "up"
model = "m-up"

[[models]]
name = "pair"
provider = "up"
model = "pair-a"

[[models]]
name = "pair"
provider = "up"
model = "pair-b"

[[models]]
name = "sticky"
provider = "up"
model = "sticky-a"

[[models]]
name = "sticky"
provider = "up"
model = "sticky-b"

[[models]]
name = "dep"
provider = "up"
model = "dep-a"
rpm = 3

[[models]]
name = "dep"
provider = "up"
model = "dep-b"

[[models]]
name = "slow"
provider = "slowp"
model = "slow-up"
"""


@dataclass
class Cluster:
    upstream: FakeProvider
    instances: list[Served]
    clients: list[httpx.Client]
    redis: RedisServer
    upstream_url: str
    postgres: PostgresServer

    def chat(self, i: int, model: str, token: str = "sk-wide-0123456789", **headers: str) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        auth = {"authorization": f"Bearer {token}", **headers}
        return self.clients[i % len(self.clients)].post("/v1/chat/completions", json=body, headers=auth)


@pytest.fixture(scope="module")
def cluster(
    redis: RedisServer, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    name = f"multi_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(postgres.dsn)
        await conn.execute(f"CREATE DATABASE {name}")
        await conn.close()

    asyncio.run(create())
    dsn = postgres.dsn.rsplit("/", 1)[0] + "/" + name
    project = tmp_path_factory.mktemp("multi")
    (project / "store-secret").write_text(SECRET + "\n")
    (project / "store-secret").chmod(0o600)
    upstream = FakeProvider()
    with ExitStack() as stack:
        url = stack.enter_context(serve(upstream))
        (project / "llmroute.toml").write_text(_config(url, redis.url, dsn, f"m{uuid.uuid4().hex[:6]}:"))
        instances = [stack.enter_context(llmroute_serve([], project)) for _ in range(3)]
        clients = [stack.enter_context(httpx.Client(base_url=s.url, timeout=30)) for s in instances]
        yield Cluster(upstream, instances, clients, redis, url, postgres)
    for served in instances:
        assert "Traceback" not in served.output, served.output


def test_rpm_limit_admits_exactly_30_of_60_over_three_instances(cluster: Cluster) -> None:
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda i: cluster.chat(i, "m", "sk-limited-0123456789").status_code, range(60)))
    assert Counter(statuses) == {200: 30, 429: 30}


def test_a_deployment_rpm_holds_over_three_instances(cluster: Cluster) -> None:
    statuses = [cluster.chat(i, "dep").status_code for i in range(12)]
    assert statuses == [200] * 12  # over dep-a's limit, requests go to dep-b
    assert cluster.upstream.served["dep-a"] == 3
    assert cluster.upstream.served["dep-b"] == 9


def test_max_in_flight_4_holds_over_three_instances(cluster: Cluster) -> None:
    cluster.upstream.max_in_flight = 0
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda i: cluster.chat(i, "slow").status_code, range(16)))
    assert statuses == [200] * 16
    assert cluster.upstream.max_in_flight == 4  # reached, never passed


def test_a_cooldown_started_through_a_holds_on_b_and_c(cluster: Cluster) -> None:
    upstream = cluster.upstream
    upstream.broken.add("pair-a")
    for _ in range(4):  # weighted round robin: pair-a is tried within two requests, fails, cools down
        assert cluster.chat(0, "pair").status_code == 200
        if upstream.served["pair-a"]:
            break
    assert upstream.served["pair-a"] == 1
    upstream.broken.clear()  # pair-a would answer now: only the shared cooldown keeps it out
    time.sleep(0.5)
    for i in range(8):
        assert cluster.chat(1 + i % 2, "pair").json()["choices"][0]["message"]["content"] == "pair-b"
    assert upstream.served["pair-a"] == 1


def test_a_session_sticks_across_instances(cluster: Cluster) -> None:
    session = {"x-llmroute-session-id": f"s-{uuid.uuid4().hex}"}
    first = cluster.chat(0, "sticky", **session).json()["choices"][0]["message"]["content"]
    time.sleep(0.3)  # remembered in the background
    for i in range(1, 9):
        assert cluster.chat(i, "sticky", **session).json()["choices"][0]["message"]["content"] == first
    # Without a session id the instances balance as usual.
    others = {cluster.chat(1, "sticky").json()["choices"][0]["message"]["content"] for _ in range(4)}
    assert others == {"sticky-a", "sticky-b"}


def test_a_provider_added_through_a_serves_on_b(cluster: Cluster) -> None:
    record = {
        "name": "added",
        "api": "openai",
        "base_url": f"{cluster.upstream_url}/v1",
        "api_key": UPSTREAM_KEY,
        "models": {"added-model": "added-up"},
    }
    reply = cluster.clients[0].post("/api/providers", json=record, headers={"authorization": f"Bearer {ADMIN}"})
    assert reply.status_code in (200, 201), reply.text
    deadline = time.monotonic() + 5
    while True:
        reply = cluster.chat(1, "added-model")
        if reply.status_code == 200:
            break
        assert reply.status_code == 404 and time.monotonic() < deadline, reply.text
        time.sleep(0.05)
    assert reply.json()["choices"][0]["message"]["content"] == "added-up"
    assert cluster.chat(2, "added-model").status_code == 200


def test_a_virtual_key_created_on_a_works_on_b_and_revoked_stops_on_c(cluster: Cluster) -> None:
    admin = {"authorization": f"Bearer {ADMIN}"}
    reply = cluster.clients[0].post("/api/keys", json={"name": "app-multi", "models": ["m"]}, headers=admin)
    assert reply.status_code in (200, 201), reply.text
    secret = reply.json()["secret"]
    deadline = time.monotonic() + 10
    while (status := cluster.chat(1, "m", secret).status_code) != 200:
        assert status == 401 and time.monotonic() < deadline
        time.sleep(0.1)
    assert cluster.chat(1, "pair", secret).status_code == 403  # its model allow-list
    assert cluster.clients[0].delete("/api/keys/app-multi", headers=admin).status_code == 200
    deadline = time.monotonic() + 10
    while (status := cluster.chat(2, "m", secret).status_code) != 401:
        assert status == 200 and time.monotonic() < deadline
        time.sleep(0.1)


def test_usage_is_summed_over_instances(cluster: Cluster) -> None:
    for i in range(3):
        assert cluster.chat(i, "m", "sk-limited-0123456789").status_code in (200, 429)
    before = _usage(cluster, "wide", "m")
    for i in range(6):
        assert cluster.chat(i, "m").status_code == 200
    time.sleep(0.5)  # written in batches
    after = _usage(cluster, "wide", "m")
    assert after["requests"] - before.get("requests", 0) == 6
    assert after["input_tokens"] - before.get("input_tokens", 0) == 18
    assert after["output_tokens"] - before.get("output_tokens", 0) == 12


def test_postgres_lost_serves_the_last_providers_and_admin_writes_get_503(cluster: Cluster) -> None:
    admin = {"authorization": f"Bearer {ADMIN}"}
    record = {"name": "later", "api": "openai", "base_url": f"{cluster.upstream_url}/v1", "api_key": UPSTREAM_KEY}
    record["models"] = {"later-model": "later-up"}  # type: ignore[assignment]
    reply = cluster.clients[0].post("/api/keys", json={"name": "app-outage"}, headers=admin)
    assert reply.status_code == 201, reply.text
    key_id, secret = reply.json()["key"]["id"], reply.json()["secret"]
    assert cluster.chat(0, "m", secret).status_code == 200  # instance 0 has read the keys
    cluster.postgres.stop()
    try:
        for i in range(6):
            assert cluster.chat(i, "m").status_code == 200
            assert cluster.chat(i, "added-model").status_code == 200  # a stored provider, loaded before
            assert cluster.chat(0, "m", secret).status_code == 200  # a virtual key read before
        reply = cluster.clients[0].post("/api/providers", json=record, headers=admin)
        assert reply.status_code == 503, reply.text
        assert reply.json()["error"]["code"] == "store_unavailable"
        assert "postgresql://postgres@127.0.0.1" in reply.json()["error"]["message"]
        assert cluster.clients[1].get("/api/providers", headers=admin).status_code == 503
    finally:
        cluster.postgres.start()
    deadline = time.monotonic() + 15
    while (reply := cluster.clients[0].post("/api/providers", json=record, headers=admin)).status_code == 503:
        assert time.monotonic() < deadline, reply.text
        time.sleep(0.2)
    assert reply.status_code in (200, 201), reply.text
    deadline = time.monotonic() + 15
    while cluster.chat(2, "later-model").status_code != 200:  # the others' listeners are back too
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # The spend of the outage was kept in memory and written once the store was back.
    deadline = time.monotonic() + 15
    while _key_requests(cluster, key_id) != 7:
        assert time.monotonic() < deadline, _key_requests(cluster, key_id)
        time.sleep(0.1)
    cluster.instances[0].wait_for("the key store is reachable again", timeout=15)  # its output is read by a thread
    output = cluster.instances[0].output
    assert "Traceback" not in output, output
    assert output.count("the key store is unavailable") == 1, output


def _key_requests(cluster: Cluster, key_id: str) -> int:
    reply = cluster.clients[1].get("/api/spend", params={"key": key_id}, headers={"authorization": f"Bearer {ADMIN}"})
    assert reply.status_code == 200, reply.text
    return sum(row["requests"] for row in reply.json()["spend"])


def test_redis_killed_and_restarted_mid_run_costs_no_500(cluster: Cluster) -> None:
    def burst(n: int) -> list[int]:
        with ThreadPoolExecutor(6) as pool:
            return list(pool.map(lambda i: cluster.chat(i, "m").status_code, range(n)))

    assert set(burst(6)) == {200}
    cluster.redis.kill()
    try:
        assert set(burst(30)) == {200}
        assert {cluster.chat(i, "slow").status_code for i in range(3)} == {200}  # leases: counted locally
    finally:
        cluster.redis.start()
    for served in cluster.instances:
        served.wait_for("reachable again", timeout=15)
    assert set(burst(12)) == {200}
    test_a_session_sticks_across_instances(cluster)  # shared state resumed


def test_redis_unreachable_at_start_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "llmroute.toml").write_text('[state]\nbackend = "redis"\nurl = "redis://:pw-secret@127.0.0.1:1/0"\n')
    result = subprocess.run(
        [*LLMROUTE, "serve", "--port", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Redis at redis://:***@127.0.0.1:1/0" in lines[0], result.stderr
    assert "pw-secret" not in result.stderr + result.stdout


def _usage(cluster: Cluster, token: str, model: str) -> dict[str, int]:
    reply = cluster.clients[2].get("/api/usage", headers={"authorization": f"Bearer {ADMIN}"})
    assert reply.status_code == 200, reply.text
    for row in reply.json()["data"]:
        if row["token"] == token and row["model"] == model:
            return {k: row[k] for k in ("requests", "input_tokens", "output_tokens")}
    return {}
