"""Benchmark of the credential proxy: what a model request pays for going through it.

Run: `python bench/credential_proxy.py --json` (one JSON object on stdout). A
local fake Anthropic API and the proxy run in this process on 127.0.0.1, on a
temporary data directory; one keep-alive client per path. Timed, after a
warm-up, ROUNDS requests each:

- json: a non-streaming Messages request, direct to the fake API vs through
  the proxy (token check, header swap, re-chunking, usage event appended
  durably after the reply); p50 and p90, and the p50 difference.
- stream first event: a streaming request, time until the first server-sent
  event arrives, direct vs through the proxy; p50.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fake API lives with the tests

from bench_support import percentile

from config.logs import configure_logging
from config.settings import load_settings
from credentials.proxy import CredentialProxy
from events import types as ev
from events.log import EventLog
from events.model import AgentGroup, GroupConfig
from tests.fakes.anthropic_server import FakeAnthropicServer, text_reply

ROUNDS = 100
WARMUP = 20
BODY = {"model": "claude-fake-1", "max_tokens": 64, "messages": [{"role": "user", "content": "hello " * 200}]}


def _timed(call: Callable[[], None]) -> list[float]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _json_call(client: httpx.Client, headers: dict[str, str]) -> Callable[[], None]:
    def call() -> None:
        response = client.post("/v1/messages", headers=headers, json=BODY)
        assert response.status_code == 200, response.text

    return call


def _first_event_call(client: httpx.Client, headers: dict[str, str]) -> Callable[[], float]:
    """Milliseconds until the first event; the rest of the stream is read too, as a real client would."""

    def call() -> float:
        started = time.perf_counter()
        first = 0.0
        with client.stream("POST", "/v1/messages", headers=headers, json={**BODY, "stream": True}) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data:") and not first:
                    first = (time.perf_counter() - started) * 1000
        return first

    return call


def _first_events(call: Callable[[], float]) -> list[float]:
    for _ in range(WARMUP):
        call()
    return [call() for _ in range(ROUNDS)]


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropicServer(lambda body: text_reply("hi")) as fake:
        root = Path(tmp)
        settings = load_settings(
            env={
                "HOME": str(root),
                "HERMITCRAB_DATA_DIR": str(root / "data"),
                "HERMITCRAB_CONTAINER_NETWORK": "host",
                "HERMITCRAB_ANTHROPIC_UPSTREAM": fake.url,
                "ANTHROPIC_API_KEY": "sk-ant-api03-bench",
                "HERMITCRAB_LOG_LEVEL": "warning",
            },
            env_file=root / "absent.env",
        )
        configure_logging(settings)
        with EventLog.open(settings.central_db) as log:
            log.append(
                "session:s1",
                [
                    ev.SessionCreated(session_id="s1", agent_group_id="g1"),
                    ev.ContainerStarting(session_id="s1", container_name="c"),
                ],
            )
            proxy = CredentialProxy(settings, log, docker.from_env).start()
            session = log.store.session("s1")
            assert session is not None
            group = AgentGroup(
                id="g1",
                name="g1",
                folder="g1",
                is_admin=False,
                agent_provider=None,
                config=GroupConfig(),
                created_at="",
            )
            env = proxy.env_for(session, group)
            headers = {"anthropic-version": "2023-06-01"}
            try:
                with (
                    httpx.Client(base_url=fake.url, timeout=30) as direct,
                    httpx.Client(base_url=env["ANTHROPIC_BASE_URL"], timeout=30) as proxied,
                ):
                    proxied_headers = {**headers, "x-api-key": env["ANTHROPIC_API_KEY"]}
                    json_direct = _timed(_json_call(direct, {**headers, "x-api-key": "sk-ant-api03-bench"}))
                    json_proxied = _timed(_json_call(proxied, proxied_headers))
                    first_direct = _first_events(_first_event_call(direct, headers))
                    first_proxied = _first_events(_first_event_call(proxied, proxied_headers))
            finally:
                proxy.stop()
            recorded = log.store.usage_by_group()["g1"].requests
    return {
        "rounds": ROUNDS,
        "json_direct_p50_ms": round(statistics.median(json_direct), 3),
        "json_direct_p90_ms": round(percentile(json_direct, 0.9), 3),
        "json_proxied_p50_ms": round(statistics.median(json_proxied), 3),
        "json_proxied_p90_ms": round(percentile(json_proxied, 0.9), 3),
        "json_added_p50_ms": round(statistics.median(json_proxied) - statistics.median(json_direct), 3),
        "stream_first_event_direct_p50_ms": round(statistics.median(first_direct), 3),
        "stream_first_event_proxied_p50_ms": round(statistics.median(first_proxied), 3),
        "stream_first_event_added_p50_ms": round(statistics.median(first_proxied) - statistics.median(first_direct), 3),
        "usage_events_recorded": recorded,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run()
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
