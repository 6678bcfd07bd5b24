"""The credential proxy for real: a local fake Anthropic API behind it, real containers in front of it.

Part one drives the proxy over HTTP from this process (streaming, refusals,
usage). Part two starts a real host with a known fake key and checks that the
key reaches the model API through the proxy yet appears nowhere in or on the
container: not in `docker inspect`, not in any process environment, not in
its file system.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

import sessiondb
from actors import admin
from actors import messages as m
from actors.host import Host
from config.settings import Settings, load_settings
from credentials.proxy import CredentialProxy
from credentials.tokens import CapabilityTokens
from events import types as ev
from events.log import EventLog
from events.model import AgentGroup, GroupConfig
from tests.fakes.anthropic_server import (
    ErrorReply,
    FakeAnthropicServer,
    Reply,
    Responder,
    message_texts,
    text_reply,
)
from tests.integration.host_support import (
    create_group,
    create_session,
    host_settings,
    remove_instance_containers,
    wait_for,
)

pytestmark = pytest.mark.integration

EVENT_DELAY_S = 0.3


def fake_key() -> str:
    """Made at run time, so the key exists in no file a container could mount."""
    return f"sk-ant-api03-hermitcrab-test-{uuid.uuid4().hex}"


def responder(body: dict[str, Any]) -> Reply | ErrorReply:
    texts = message_texts(body)
    if texts and texts[-1] == "overload me":
        return ErrorReply(529, "overloaded_error", "Overloaded")
    return text_reply(f"you said: {texts[-1] if texts else ''}")


def request_body(text: str, *, stream: bool) -> dict[str, Any]:
    return {
        "model": "claude-fake-1",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    }


def group(group_id: str) -> AgentGroup:
    return AgentGroup(
        id=group_id,
        name=group_id,
        folder=group_id,
        is_admin=False,
        agent_provider=None,
        config=GroupConfig(),
        created_at="",
    )


def running_session(log: EventLog, session_id: str, group_id: str) -> None:
    log.append(
        f"session:{session_id}",
        [
            ev.SessionCreated(session_id=session_id, agent_group_id=group_id),
            ev.ContainerStarting(session_id=session_id, container_name=f"c-{session_id}"),
        ],
    )


class Rig:
    """A proxy on 127.0.0.1 in front of a fake API, with sessions s1 (group g1), s2 (g2) and s3 (g1) running."""

    def __init__(self, settings: Settings, log: EventLog, fake: FakeAnthropicServer, proxy: CredentialProxy) -> None:
        self.settings = settings
        self.log = log
        self.fake = fake
        self.proxy = proxy
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}", timeout=30)

    def token(self, session_id: str, group_id: str = "g1") -> str:
        session = self.log.store.session(session_id)
        assert session is not None
        return self.proxy.env_for(session, group(group_id))["ANTHROPIC_API_KEY"]

    def headers(self, token: str | None) -> dict[str, str]:
        headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219"}
        if token is not None:
            headers["x-api-key"] = token
        return headers


@contextlib.contextmanager
def make_rig(tmp_path: Path, *, delay: float = 0.0, **env: str) -> Iterator[Rig]:
    with FakeAnthropicServer(responder, event_delay_s=delay) as fake:
        settings = load_settings(
            env={
                "HOME": str(tmp_path / "home"),
                "HERMITCRAB_DATA_DIR": str(tmp_path / "data"),
                "HERMITCRAB_CONTAINER_NETWORK": "host",
                "HERMITCRAB_ANTHROPIC_UPSTREAM": fake.url,
                "HERMITCRAB_LOG_LEVEL": "warning",
                **env,
            },
            env_file=tmp_path / "absent.env",
        )
        with EventLog.open(settings.central_db) as log:
            for session_id, group_id in (("s1", "g1"), ("s2", "g2"), ("s3", "g1")):
                running_session(log, session_id, group_id)
            proxy = CredentialProxy(settings, log, docker.from_env).start()
            rig = Rig(settings, log, fake, proxy)
            try:
                yield rig
            finally:
                rig.client.close()
                proxy.stop()


@pytest.fixture
def key() -> str:
    return fake_key()


@pytest.fixture
def rig(tmp_path: Path, key: str) -> Iterator[Rig]:
    with make_rig(tmp_path, ANTHROPIC_API_KEY=key) as started:
        yield started


def test_a_stream_reaches_the_api_with_the_real_key_and_comes_back_as_it_is_made(tmp_path: Path, key: str) -> None:
    with make_rig(tmp_path, delay=EVENT_DELAY_S, ANTHROPIC_API_KEY=key) as rig:
        check_streaming(rig, key)


def check_streaming(rig: Rig, key: str) -> None:
    token = rig.token("s1")
    sent = request_body("stream please", stream=True)
    arrivals: list[tuple[float, str]] = []
    started = time.monotonic()
    with rig.client.stream("POST", "/v1/messages?beta=true", headers=rig.headers(token), json=sent) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["request-id"].startswith("req_")
        data: list[dict[str, Any]] = []
        for line in response.iter_lines():
            if line.startswith("data:"):
                data.append(json.loads(line[5:]))
                arrivals.append((time.monotonic() - started, data[-1]["type"]))
    finished = time.monotonic() - started

    # Streaming, not buffering: six events with a pause after each take ~1.8 s; the first one is here long before.
    assert [kind for _, kind in arrivals][:2] == ["message_start", "content_block_start"]
    assert finished >= 5 * EVENT_DELAY_S
    first_seen = arrivals[0][0]
    assert first_seen < finished - 3 * EVENT_DELAY_S, arrivals
    assert data[2]["delta"]["text"] == "you said: stream please"

    [received] = rig.fake.message_requests()
    assert received.path == "/v1/messages?beta=true"
    assert received.headers["x-api-key"] == key
    assert "authorization" not in {name.lower() for name in received.headers}
    assert token not in json.dumps(received.headers)
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.headers["anthropic-beta"] == "claude-code-20250219"
    assert received.body == sent


def test_json_replies_and_api_errors_pass_through_unchanged(rig: Rig) -> None:
    token = rig.token("s1")
    reply = rig.client.post("/v1/messages", headers=rig.headers(token), json=request_body("hi", stream=False))
    assert reply.status_code == 200
    assert reply.json()["content"] == [{"type": "text", "text": "you said: hi"}]
    assert reply.json()["usage"]["output_tokens"] == 5
    error = rig.client.post("/v1/messages", headers=rig.headers(token), json=request_body("overload me", stream=False))
    assert error.status_code == 529
    assert error.json() == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert len(rig.fake.message_requests()) == 2


def test_requests_without_a_valid_token_are_refused_and_never_reach_the_api(rig: Rig, tmp_path: Path) -> None:
    stopped = rig.token("s2", "g2")
    rig.log.append("session:s2", [ev.ContainerStopped(session_id="s2", container_id=None, reason="idle", exit_code=0)])
    foreign = CapabilityTokens.for_data_dir(tmp_path / "another-host").issue("s1")
    body = request_body("let me in", stream=True)
    for token in (None, "sk-ant-api03-guessed", rig.token("s1") + "x", foreign, stopped):
        refused = rig.client.post("/v1/messages", headers=rig.headers(token), json=body)
        assert refused.status_code == 401, token
        assert refused.json()["type"] == "error"
        assert refused.json()["error"]["type"] == "authentication_error"
        assert refused.json()["error"]["message"].startswith("hermitcrab: ")
    bearer = rig.client.post("/v1/messages", headers={"authorization": "Bearer hc1.made.up.token"}, json=body)
    assert bearer.status_code == 401
    assert rig.fake.requests == []
    assert rig.log.store.usage_by_group() == {}


def test_usage_is_recorded_per_agent_group(rig: Rig) -> None:
    for session_id, group_id, stream in (("s1", "g1", True), ("s3", "g1", False), ("s2", "g2", True)):
        token = rig.token(session_id, group_id)
        response = rig.client.post(
            "/v1/messages", headers=rig.headers(token), json=request_body("count me", stream=stream)
        )
        assert response.status_code == 200
    wait_for(lambda: sum(u.requests for u in rig.log.store.usage_by_group().values()) == 3, 10, "3 usage records")
    usage = rig.log.store.usage_by_group()
    # The fake reports 10 input and 5 output tokens per reply (a stream's message_delta total replaces its start).
    assert (usage["g1"].requests, usage["g1"].input_tokens, usage["g1"].output_tokens) == (2, 20, 10)
    assert (usage["g2"].requests, usage["g2"].input_tokens, usage["g2"].output_tokens) == (1, 10, 5)
    recorded = [r.event for r in rig.log.read(types=["usage.recorded"])]
    assert {(e.session_id, e.agent_group_id, e.model) for e in recorded} == {
        ("s1", "g1", "claude-fake-1"),
        ("s3", "g1", "claude-fake-1"),
        ("s2", "g2", "claude-fake-1"),
    }


def test_an_oauth_token_goes_upstream_as_a_bearer_with_its_beta(tmp_path: Path) -> None:
    oauth = f"sk-ant-oat01-hermitcrab-test-{uuid.uuid4().hex}"
    with make_rig(tmp_path, CLAUDE_CODE_OAUTH_TOKEN=oauth) as rig:
        token = rig.token("s1")
        response = rig.client.post("/v1/messages", headers=rig.headers(token), json=request_body("hi", stream=True))
        assert response.status_code == 200
        [received] = rig.fake.message_requests()
        assert received.headers["authorization"] == f"Bearer {oauth}"
        assert received.headers["anthropic-beta"] == "claude-code-20250219,oauth-2025-04-20"
        assert "x-api-key" not in {name.lower() for name in received.headers}


def test_an_unreachable_api_is_a_clear_502(tmp_path: Path, key: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    upstream = f"http://127.0.0.1:{closed_port}"
    with make_rig(tmp_path, ANTHROPIC_API_KEY=key, HERMITCRAB_ANTHROPIC_UPSTREAM=upstream) as rig:
        response = rig.client.post(
            "/v1/messages", headers=rig.headers(rig.token("s1")), json=request_body("hi", stream=False)
        )
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "api_error"
        assert key not in response.text


# -- part two: a real host, a real container -----------------------------------------------------------


def _exec(container: Any, command: list[str], user: str = "") -> tuple[int, str]:
    result = container.exec_run(command, user=user)
    return result.exit_code, result.output.decode(errors="replace")


INSIDE_CALL = """
import json, os, urllib.error, urllib.request
def call(token):
    body = {"model": "claude-fake-1", "max_tokens": 8, "messages": [{"role": "user", "content": "from inside"}]}
    request = urllib.request.Request(
        os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
        data=json.dumps(body).encode(),
        headers={"x-api-key": token, "anthropic-version": "2023-06-01", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
print(json.dumps([call(os.environ["ANTHROPIC_API_KEY"]), call("hc1.made-up.token.mac")]))
"""


class HostRig:
    """A real in-process host whose containers share the host network, with a key configured and a fake API."""

    def __init__(
        self,
        tmp_path: Path,
        docker_client: docker.DockerClient,
        agent_image: str,
        provider: str = "echo",
        answer: Responder = responder,
    ) -> None:
        self.key = fake_key()
        self.docker = docker_client
        self.fake = FakeAnthropicServer(answer).start()
        self.settings = host_settings(
            tmp_path,
            CONTAINER_IMAGE=agent_image,
            HERMITCRAB_CONTAINER_NETWORK="host",
            HERMITCRAB_PROVIDER=provider,
            ANTHROPIC_API_KEY=self.key,
            HERMITCRAB_ANTHROPIC_UPSTREAM=self.fake.url,
        )
        self.host = self.start_host()

    def start_host(self) -> Host:
        host = Host(self.settings)
        host.start()
        self.host = host
        return host

    @property
    def log(self) -> EventLog:
        assert self.host.log is not None
        return self.host.log

    @property
    def proxy(self) -> CredentialProxy:
        assert self.host.credential_proxy is not None
        return self.host.credential_proxy

    def container_id(self, session_id: str) -> str | None:
        session = self.log.store.session(session_id)
        return session.container_id if session and session.container_status in ("running", "idle") else None

    def running_container(self, session_id: str) -> Any:
        wait_for(lambda: self.container_id(session_id), 60, "the session's container to run")
        return self.docker.containers.get(self.container_id(session_id))

    def call_from_inside(self, container: Any) -> tuple[tuple[int, Any], tuple[int, Any]]:
        """The container's own token, then a made-up one: (status, reply) each."""
        code, output = _exec(container, ["python", "-c", INSIDE_CALL])
        assert code == 0, output
        own, made_up = json.loads(output)
        return (own[0], own[1]), (made_up[0], made_up[1])

    def close(self) -> None:
        self.host.stop()
        remove_instance_containers(self.docker, self.settings)
        self.fake.stop()


@pytest.fixture
def host_rig(tmp_path: Path, docker_client: docker.DockerClient, agent_image: str) -> Iterator[HostRig]:
    rig = HostRig(tmp_path, docker_client, agent_image)
    yield rig
    rig.close()


def test_the_credential_never_enters_the_container(host_rig: HostRig, docker_client: docker.DockerClient) -> None:
    key, fake = host_rig.key, host_rig.fake
    group_id = create_group(host_rig.log, "vault")
    session_id = create_session(host_rig.log, group_id)
    host_rig.host.wake(session_id, "test")
    container = host_rig.running_container(session_id)

    # docker inspect, taken before any exec: environment, args, command, labels, mounts, host config.
    inspected = docker_client.api.inspect_container(container.id)
    assert key not in json.dumps(inspected)
    env = dict(item.split("=", 1) for item in inspected["Config"]["Env"])
    token = env["ANTHROPIC_API_KEY"]
    assert token.startswith(f"hc1.{session_id}.")
    assert env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{host_rig.proxy.port}"

    # The environment of PID 1 and of every other process in the container, read as the container's own
    # user (root in the container lacks the ptrace right to read another user's environ).
    code, pid1 = _exec(container, ["sh", "-c", "tr '\\0' '\\n' < /proc/1/environ"])
    assert code == 0 and f"ANTHROPIC_API_KEY={token}" in pid1.splitlines()
    assert key not in pid1
    code, every = _exec(container, ["sh", "-c", "cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline | tr '\\0' '\\n'"])
    assert "AGENT_PROVIDER=echo" in every and key not in every

    # The whole file system, as root, with a control file proving the search does find what is there.
    control = f"hermitcrab-grep-control-{uuid.uuid4().hex}"
    assert _exec(container, ["sh", "-c", f"echo {control} > /tmp/control.txt"], user="0")[0] == 0
    grep = ["grep", "-rlsF", "-D", "skip", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev"]
    code, found = _exec(container, [*grep, "-e", key, "-e", control, "/"], user="0")
    assert found.split() == ["/tmp/control.txt"], (code, found)

    # From inside: the container's own token gets through with the real key; a made-up one does not.
    (own_status, own_reply), (made_up_status, made_up_reply) = host_rig.call_from_inside(container)
    assert own_status == 200 and own_reply["content"][0]["text"] == "you said: from inside"
    assert made_up_status == 401 and made_up_reply["error"]["type"] == "authentication_error"
    [received] = fake.message_requests()
    assert received.headers["x-api-key"] == key
    assert message_texts(received.body) == ["from inside"]
    wait_for(lambda: group_id in host_rig.log.store.usage_by_group(), 10, "the usage record")
    assert host_rig.log.store.usage_by_group()[group_id].output_tokens == 5

    # Stopping the container revokes its token.
    assert host_rig.host.manager is not None
    host_rig.host.manager.tell(m.StopSession(session_id, "test"))
    wait_for(lambda: host_rig.container_id(session_id) is None, 30, "the container to stop")
    revoked = httpx.post(
        f"http://127.0.0.1:{host_rig.proxy.port}/v1/messages",
        headers={"x-api-key": token},
        json=request_body("after stop", stream=False),
    )
    assert revoked.status_code == 401
    assert len(fake.message_requests()) == 1


def test_an_adopted_container_keeps_reaching_the_proxy_after_a_host_restart(host_rig: HostRig) -> None:
    session_id = create_session(host_rig.log, create_group(host_rig.log, "survivor"))
    host_rig.host.wake(session_id, "test")
    container = host_rig.running_container(session_id)
    port = host_rig.proxy.port

    host_rig.host.stop()
    host_rig.start_host()
    assert host_rig.running_container(session_id).id == container.id
    assert host_rig.proxy.port == port

    (own_status, own_reply), (made_up_status, _) = host_rig.call_from_inside(container)
    assert own_status == 200, own_reply
    assert made_up_status == 401
    assert [r.headers["x-api-key"] for r in host_rig.fake.message_requests()] == [host_rig.key]


def test_the_claude_agent_answers_through_the_proxy(
    tmp_path: Path, docker_client: docker.DockerClient, agent_image: str
) -> None:
    """The real Claude Code CLI in a real container, knowing only its token, gets its model turn via the proxy."""
    rig = HostRig(tmp_path, docker_client, agent_image, provider="claude", answer=lambda body: text_reply("via proxy"))
    try:
        group_id = create_group(rig.log, "talker")
        group = rig.log.store.agent_group(group_id)
        assert group is not None
        # A chat to answer: the runner sends a reply only where the session has a route.
        chat = admin.ensure_messaging_group(rig.log, "terminal", f"proxy-test-{uuid.uuid4().hex[:6]}")
        session_id = admin.create_session(rig.log, group, messaging_group_id=chat.id).id
        folder = sessiondb.session_dir(rig.settings.sessions_dir, group_id, session_id)
        sessiondb.create_session_folder(folder)
        content = json.dumps({"text": "hello claude", "sender": "ann"})
        sessiondb.insert_message(folder, sessiondb.InboundMessage(id="m-1", kind="chat", content=content))
        rig.host.wake(session_id, "message")

        def replies() -> list[str]:
            if not (folder / "outbound.db").is_file():
                return []
            with contextlib.closing(sqlite3.connect(folder / "outbound.db")) as db:
                rows = db.execute("SELECT content FROM messages_out WHERE kind = 'chat'").fetchall()
            return [json.loads(row[0]).get("text", "") for row in rows]

        wait_for(replies, 120, "the agent's reply", every_s=0.25)
        assert replies() == ["via proxy"]
        requests = rig.fake.message_requests()
        assert requests and all(r.headers["x-api-key"] == rig.key for r in requests)
        assert all(r.path == "/v1/messages?beta=true" for r in requests)
        wait_for(lambda: group_id in rig.log.store.usage_by_group(), 10, "the usage record")
        assert rig.log.store.usage_by_group()[group_id].requests == len(requests)
    finally:
        rig.close()
