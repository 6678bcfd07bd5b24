"""The proxy's decisions without Docker: who may call, what containers are given, where it listens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from config.settings import Settings, SettingsError, load_settings
from credentials.network import CONTAINER_HOSTNAME, ProxyAddressError, bridge_gateway
from credentials.proxy import LOOKUP_THREADS, PORT_FILE, CredentialProxy, Grant, ProxyStartError, Refusal
from credentials.tokens import CapabilityTokens
from events import types as ev
from events.log import EventLog
from events.model import AgentGroup, GroupConfig

GROUP = AgentGroup(
    id="g1", name="G", folder="g", is_admin=False, agent_provider=None, config=GroupConfig(), created_at="x"
)


class _Network:
    def __init__(self, ipam: dict[str, Any]) -> None:
        self.attrs = {"IPAM": ipam}


class FakeDocker:
    """Just enough of docker.DockerClient for the bridge lookup: `networks.get("bridge").attrs`."""

    def __init__(self, ipam: dict[str, Any]) -> None:
        self._ipam = ipam
        self.networks = self
        self.closed = False

    def get(self, name: str) -> _Network:
        assert name == "bridge"
        return _Network(self._ipam)

    def close(self) -> None:
        self.closed = True


def no_docker() -> docker.DockerClient:
    raise AssertionError("loopback networking must not ask the engine anything")


def make_settings(settings_env: dict[str, str], tmp_path: Path, **env: str) -> Settings:
    base = {"HERMITCRAB_CONTAINER_NETWORK": "host", "ANTHROPIC_API_KEY": "sk-ant-api03-REAL"}
    return load_settings(env={**settings_env, **base, **env}, env_file=tmp_path / "no.env")


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    with EventLog.open(tmp_path / "central.db") as opened:
        opened.append("session:s1", [ev.SessionCreated(session_id="s1", agent_group_id="g1")])
        yield opened


@pytest.fixture
def proxy_settings(settings_env: dict[str, str], tmp_path: Path) -> Settings:
    return make_settings(settings_env, tmp_path)


@pytest.fixture
def proxy(proxy_settings: Settings, log: EventLog) -> Iterator[CredentialProxy]:
    started = CredentialProxy(proxy_settings, log, no_docker).start()
    yield started
    started.stop()


def session(log: EventLog, session_id: str = "s1") -> Any:
    found = log.store.session(session_id)
    assert found is not None
    return found


def test_a_container_gets_the_proxy_url_and_its_own_token(
    proxy: CredentialProxy, proxy_settings: Settings, log: EventLog
) -> None:
    env = proxy.env_for(session(log), GROUP)
    assert set(env) == {"ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"}
    assert proxy.bind_host == "127.0.0.1"
    assert env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{proxy.port}"
    assert "sk-ant-api03-REAL" not in str(env)
    tokens = CapabilityTokens.for_data_dir(proxy_settings.data_dir)
    assert tokens.session_of(env["ANTHROPIC_API_KEY"]) == "s1"


def test_without_a_credential_nothing_listens_and_containers_get_nothing(
    settings_env: dict[str, str], tmp_path: Path, log: EventLog
) -> None:
    settings = load_settings(env={**settings_env, "HERMITCRAB_CONTAINER_NETWORK": "host"}, env_file=tmp_path / "no.env")
    idle = CredentialProxy(settings, log, no_docker).start()
    assert idle.env_for(session(log), GROUP) == {}
    with pytest.raises(AssertionError, match="not listening"):
        _ = idle.port
    idle.stop()


def test_the_token_is_honoured_only_while_its_container_is_up(proxy: CredentialProxy, log: EventLog) -> None:
    token = proxy.env_for(session(log), GROUP)["ANTHROPIC_API_KEY"]
    stream = "session:s1"

    def decision() -> Grant | Refusal:
        return proxy.authorize(token)

    assert isinstance(decision(), Refusal), "a container that was never started"
    log.append(stream, [ev.ContainerStarting(session_id="s1", container_name="c")])
    assert decision() == Grant("s1", "g1")
    log.append(
        stream,
        [ev.ContainerSpawned(session_id="s1", container_id="c1", container_name="c", image="i", mounts_digest="d")],
    )
    assert decision() == Grant("s1", "g1")
    log.append(stream, [ev.ContainerIdle(session_id="s1", container_id="c1")])
    assert decision() == Grant("s1", "g1")
    log.append(stream, [ev.ContainerStopping(session_id="s1", container_id="c1", reason="idle")])
    assert isinstance(decision(), Refusal)
    log.append(stream, [ev.ContainerStopped(session_id="s1", container_id="c1", reason="idle", exit_code=0)])
    refusal = decision()
    assert isinstance(refusal, Refusal)
    assert refusal.status == 401
    assert "revoked" in refusal.message


def test_tokens_of_unknown_sessions_foreign_tokens_and_no_token_are_refused(
    proxy: CredentialProxy, proxy_settings: Settings, log: EventLog, tmp_path: Path
) -> None:
    log.append("session:s1", [ev.ContainerStarting(session_id="s1", container_name="c")])
    ours = CapabilityTokens.for_data_dir(proxy_settings.data_dir)
    foreign = CapabilityTokens.for_data_dir(tmp_path / "elsewhere")
    for token, reason in (
        (ours.issue("s-unknown"), "revoked"),
        (foreign.issue("s1"), "not issued by this host"),
        ("sk-ant-api03-guess", "not issued by this host"),
        (None, "no capability token"),
    ):
        refusal = proxy.authorize(token)
        assert isinstance(refusal, Refusal)
        assert reason in refusal.message
        assert refusal.status == 401


def test_the_port_is_kept_across_restarts_of_the_host(
    settings_env: dict[str, str], tmp_path: Path, log: EventLog
) -> None:
    settings = make_settings(settings_env, tmp_path)
    first = CredentialProxy(settings, log, no_docker).start()
    port = first.port
    first.stop()
    assert (settings.data_dir / PORT_FILE).read_text().strip() == str(port)
    second = CredentialProxy(settings, log, no_docker).start()
    try:
        assert second.port == port
    finally:
        second.stop()


def test_a_remembered_port_that_is_taken_or_unreadable_gives_way_to_a_free_one(
    settings_env: dict[str, str], tmp_path: Path, log: EventLog
) -> None:
    settings = make_settings(settings_env, tmp_path)
    holder = CredentialProxy(make_settings(settings_env, tmp_path / "holder"), log, no_docker).start()
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        for content in (str(holder.port), "garbage", "99999"):
            (settings.data_dir / PORT_FILE).write_text(content)
            proxy = CredentialProxy(settings, log, no_docker).start()
            try:
                assert proxy.port not in (0, holder.port)
                assert (settings.data_dir / PORT_FILE).read_text().strip() == str(proxy.port)
            finally:
                proxy.stop()
    finally:
        holder.stop()


def test_a_configured_port_that_is_taken_is_a_clear_error(
    settings_env: dict[str, str], tmp_path: Path, log: EventLog
) -> None:
    holder = CredentialProxy(make_settings(settings_env, tmp_path / "holder"), log, no_docker).start()
    try:
        settings = make_settings(settings_env, tmp_path, HERMITCRAB_PROXY_PORT=str(holder.port))
        with pytest.raises(ProxyStartError, match=f"127.0.0.1:{holder.port}.*HERMITCRAB_PROXY_PORT"):
            CredentialProxy(settings, log, no_docker).start()
    finally:
        holder.stop()


def test_a_configured_port_is_used(settings_env: dict[str, str], tmp_path: Path, log: EventLog) -> None:
    probe = CredentialProxy(make_settings(settings_env, tmp_path), log, no_docker).start()
    free = probe.port
    probe.stop()
    settings = make_settings(settings_env, tmp_path / "other", HERMITCRAB_PROXY_PORT=str(free))
    configured = CredentialProxy(settings, log, no_docker).start()
    try:
        assert configured.port == free
        assert configured.env_for(session(log), GROUP)["ANTHROPIC_BASE_URL"].endswith(f":{free}")
    finally:
        configured.stop()


def test_bridge_networking_binds_the_gateway_and_containers_use_the_host_name(
    settings_env: dict[str, str], tmp_path: Path, log: EventLog
) -> None:
    # A loopback "bridge" so the test binds nothing but 127.0.0.1.
    client = FakeDocker({"Config": [{"Subnet": "127.0.0.0/8"}]})
    settings = make_settings(settings_env, tmp_path, HERMITCRAB_CONTAINER_NETWORK="bridge")
    bridged = CredentialProxy(settings, log, lambda: client).start()  # type: ignore[arg-type, return-value]
    try:
        assert bridged.bind_host == "127.0.0.1"
        assert bridged.env_for(session(log), GROUP)["ANTHROPIC_BASE_URL"] == (
            f"http://{CONTAINER_HOSTNAME}:{bridged.port}"
        )
        assert client.closed
    finally:
        bridged.stop()


@pytest.mark.parametrize(
    ("ipam", "gateway"),
    [
        ({"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]}, "172.17.0.1"),
        ({"Config": [{"Subnet": "172.18.0.0/16"}]}, "172.18.0.1"),
        ({"Config": [{"Subnet": "fd00::/64", "Gateway": "fd00::1"}, {"Subnet": "10.9.0.0/24"}]}, "10.9.0.1"),
    ],
)
def test_the_bridge_gateway_is_read_from_the_engine(ipam: dict[str, Any], gateway: str) -> None:
    assert bridge_gateway(FakeDocker(ipam)) == gateway  # type: ignore[arg-type]


@pytest.mark.parametrize("ipam", [{}, {"Config": None}, {"Config": [{"Subnet": "fd00::/64"}]}, {"Config": [{}]}])
def test_a_bridge_without_an_ipv4_gateway_is_a_clear_error(ipam: dict[str, Any]) -> None:
    with pytest.raises(ProxyAddressError, match="docker network inspect bridge"):
        bridge_gateway(FakeDocker(ipam))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HERMITCRAB_PROXY_PORT", "70000"),
        ("HERMITCRAB_PROXY_PORT", "-1"),
        ("HERMITCRAB_PROXY_PORT", "http"),
        ("HERMITCRAB_ANTHROPIC_UPSTREAM", "api.anthropic.com"),
        ("HERMITCRAB_ANTHROPIC_UPSTREAM", "ftp://example.org"),
    ],
)
def test_bad_proxy_settings_name_the_variable(
    settings_env: dict[str, str], tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(env={**settings_env, variable: value}, env_file=tmp_path / "no.env")


def test_proxy_settings_defaults_and_values(settings_env: dict[str, str], tmp_path: Path) -> None:
    defaults = load_settings(env=settings_env, env_file=tmp_path / "no.env")
    assert (defaults.anthropic_upstream, defaults.proxy_port) == ("https://api.anthropic.com", 0)
    custom = load_settings(
        env={
            **settings_env,
            "HERMITCRAB_ANTHROPIC_UPSTREAM": "http://127.0.0.1:9/base/",
            "HERMITCRAB_PROXY_PORT": "3001",
        },
        env_file=tmp_path / "no.env",
    )
    assert (custom.anthropic_upstream, custom.proxy_port) == ("http://127.0.0.1:9/base", 3001)


def open_files(path: Path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in os.listdir(fds) if os.path.realpath(fds / fd) == str(path.resolve()))


def test_many_client_connections_do_not_pile_up_database_connections(
    proxy: CredentialProxy, log: EventLog, tmp_path: Path
) -> None:
    """Each client connection has its own thread; the token check must not open a read connection in each."""
    token = proxy.env_for(session(log), GROUP)["ANTHROPIC_API_KEY"]  # s1 has no running container: refused
    before = open_files(tmp_path / "central.db")
    for _ in range(30):
        with httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}") as fresh:
            assert fresh.post("/v1/messages", headers={"x-api-key": token}, json={}).status_code == 401
    assert open_files(tmp_path / "central.db") - before <= LOOKUP_THREADS


def test_a_closed_event_store_refuses_with_503_instead_of_failing(proxy: CredentialProxy, log: EventLog) -> None:
    token = proxy.env_for(session(log), GROUP)["ANTHROPIC_API_KEY"]
    log.close()
    refusal = proxy.authorize(token)
    assert isinstance(refusal, Refusal)
    assert refusal.status == 503
