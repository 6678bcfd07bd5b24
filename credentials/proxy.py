"""The credential proxy: containers call the model API through it with a capability token, never the real secret.

Each request is authorized (a token this host issued, for a session whose
container is up), its token swapped for the real credential, and forwarded;
the response streams back chunk by chunk as it arrives, so server-sent events
reach the agent without delay. The tokens the response reports are recorded
per agent group once it has been passed on. Everything that may refuse a
request before it costs anything lives in `authorize` — a spending cap would
be one more check there.

Threads: the listener and one thread per client connection (stdlib
ThreadingHTTPServer); upstream calls share one httpx client (thread-safe,
keeping connections to the API alive). Session lookups run on a small fixed
pool: the event store keeps one read connection per thread that ever read,
so reading from short-lived connection threads would pile them up.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import httpx

from config.logs import get_logger
from config.settings import Settings
from credentials.network import listen_address
from credentials.tokens import CapabilityTokens
from credentials.upstream import UpstreamCredential, client_headers, presented_token, upstream_headers
from credentials.usage import Usage, UsageMeter
from events import types as ev
from events.log import EventLog, ProjectionError
from events.model import AgentGroup, Session

PORT_FILE = "proxy-port"
LIVE_CONTAINER = ("starting", "running", "idle")
"""Container states in which a session's token is honoured; any other state revokes it."""
DRAIN_TIMEOUT_S = 5.0
LOOKUP_THREADS = 2
LOOKUP_TIMEOUT_S = 10.0
MAX_REQUEST_BODY = 32 * 1024 * 1024
"""The Messages API's own request size limit; a larger body is refused unread."""
UPSTREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=30.0)
"""`read` is the longest silence between two pieces of a response; a stream sends pings well within it."""

log = get_logger("credentials.proxy")


class ProxyStartError(RuntimeError):
    """The proxy cannot listen where it must; the message names the address and the setting."""


@dataclass(frozen=True)
class Grant:
    """A request the proxy will forward, and whose usage it will count."""

    session_id: str
    agent_group_id: str


@dataclass(frozen=True)
class Refusal:
    status: int
    error_type: str
    message: str


class CredentialProxy:
    """The host's model-API proxy; implements `ContainerCredentials` for the session actors."""

    def __init__(
        self, settings: Settings, log: EventLog, docker_client_factory: Callable[[], docker.DockerClient]
    ) -> None:
        self._settings = settings
        self._log = log
        self._docker_client_factory = docker_client_factory
        self._credential = UpstreamCredential.from_settings(settings)
        self._tokens: CapabilityTokens | None = None
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self._container_url: str | None = None
        self._lookups: ThreadPoolExecutor | None = None
        self._in_flight = 0
        self._idle = threading.Condition()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> CredentialProxy:
        """Listen and serve; without a configured credential there is nothing to proxy and nothing listens."""
        if self._credential is None:
            log.info("proxy.off", reason="no ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN configured")
            return self
        address = listen_address(self._settings, self._docker_client_factory)
        self._tokens = CapabilityTokens.for_data_dir(self._settings.data_dir)
        self._server = self._bind(address.bind_host)
        self._client = httpx.Client(timeout=UPSTREAM_TIMEOUT, follow_redirects=False)
        self._lookups = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="credential-proxy-lookup")
        self._container_url = f"http://{address.container_host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="credential-proxy", daemon=True)
        self._thread.start()
        log.info(
            "proxy.started",
            bind=address.bind_host,
            port=self.port,
            upstream=self._settings.anthropic_upstream,
            auth=self._credential.kind,
        )
        return self

    def stop(self) -> None:
        """Stop accepting, give requests in flight a moment to finish (and record their usage), then close."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, DRAIN_TIMEOUT_S):
                log.warning("proxy.stopped_with_requests_in_flight", requests=self._in_flight)
        # Kept (closed) rather than dropped: a straggler past the drain then gets a clean 502/503, not a crash.
        if self._client is not None:
            self._client.close()
        if self._lookups is not None:
            self._lookups.shutdown(wait=True)
        self._container_url = None

    @property
    def bind_host(self) -> str:
        assert self._server is not None, "the proxy is not listening"
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not listening"
        return int(self._server.server_address[1])

    def _bind(self, host: str) -> _ProxyServer:
        """The configured port, else the one this data directory used before (adopted containers know it)."""
        port_file = self._settings.data_dir / PORT_FILE
        configured = self._settings.proxy_port
        remembered = _remembered_port(port_file) if not configured else 0
        try:
            server = _ProxyServer((host, configured or remembered), self)
        except OSError as exc:
            if configured or not remembered:
                raise ProxyStartError(
                    f"the credential proxy cannot listen on {host}:{configured or 'any port'} ({exc.strerror}); "
                    f"check that {host} is an address of this machine and HERMITCRAB_PROXY_PORT "
                    "is free (0 picks a free port)"
                ) from exc
            log.warning("proxy.port_taken", port=remembered, note="running containers must restart to reach the proxy")
            server = _ProxyServer((host, 0), self)
        if not configured:
            port_file.write_text(f"{server.server_address[1]}\n")
        return server

    # -- what containers get ------------------------------------------------------------------------

    def env_for(self, session: Session, group: AgentGroup) -> dict[str, str]:
        """The proxy's address and a fresh token for this start of the session's container (none when off)."""
        if self._tokens is None or self._container_url is None:
            return {}
        return {"ANTHROPIC_BASE_URL": self._container_url, "ANTHROPIC_API_KEY": self._tokens.issue(session.id)}

    # -- per request ----------------------------------------------------------------------------------

    def authorize(self, token: str | None) -> Grant | Refusal:
        """Whether a request may go upstream: a token this host issued, for a session whose container is up."""
        assert self._tokens is not None and self._lookups is not None
        if token is None:
            return Refusal(401, "authentication_error", "no capability token (x-api-key) was sent")
        session_id = self._tokens.session_of(token)
        if session_id is None:
            return Refusal(401, "authentication_error", "the capability token was not issued by this host")
        try:
            session = self._lookups.submit(self._log.store.session, session_id).result(LOOKUP_TIMEOUT_S)
        except (TimeoutError, RuntimeError, sqlite3.Error) as exc:
            log.error("proxy.lookup_failed", session_id=session_id, error=f"{type(exc).__name__}: {exc}")
            return Refusal(503, "api_error", "the host cannot check this token right now; retry shortly")
        if session is None or session.container_status not in LIVE_CONTAINER:
            return Refusal(
                401,
                "authentication_error",
                f"the capability token of session {session_id} is revoked: its container is not running",
            )
        return Grant(session_id, session.agent_group_id)

    def open_upstream(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> httpx.Response:
        """Send the request upstream with the real credential; the response body is still to be read."""
        assert self._client is not None and self._credential is not None
        request = self._client.build_request(
            method,
            self._settings.anthropic_upstream + path,
            headers=upstream_headers(headers, self._credential),
            content=body,
        )
        return self._client.send(request, stream=True)

    def record(self, grant: Grant, usage: Usage | None) -> None:
        """One durable event per response that reported usage; a failure to record never fails the request."""
        if usage is None:
            return
        event = ev.UsageRecorded(
            agent_group_id=grant.agent_group_id,
            session_id=grant.session_id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_creation_tokens=usage.cache_creation_tokens,
            model=usage.model,
        )
        try:
            self._log.append(f"usage:{grant.agent_group_id}", [event])
        except (sqlite3.Error, ProjectionError) as exc:
            log.error("proxy.usage_not_recorded", session_id=grant.session_id, error=str(exc))

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()


def _remembered_port(port_file: Path) -> int:
    try:
        port = int(port_file.read_text().strip())
    except (OSError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], proxy: CredentialProxy) -> None:
        super().__init__(address, _Handler)
        self.proxy = proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Server-sent events are small writes that must leave at once, not wait for an ACK.
    disable_nagle_algorithm = True
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the stdlib's access log is replaced by structured lines that never include headers."""

    def do_POST(self) -> None:
        proxy = self.server.proxy
        with proxy.in_flight():
            # The body is read even when the request will be refused: closing on unread bytes resets the
            # connection, and the client might then never see the refusal.
            body = self._read_body()
            if isinstance(body, Refusal):
                self._send_error(body)
                return
            headers = list(self.headers.items())
            grant = proxy.authorize(presented_token(headers))
            if isinstance(grant, Refusal):
                log.warning("proxy.refused", client=self.client_address[0], path=self.path, reason=grant.message)
                self._send_error(grant)
                return
            if not self.path.startswith("/"):
                self._send_error(Refusal(400, "invalid_request_error", f"not a path on the API: {self.path!r}"))
                return
            self._forward(proxy, grant, headers, body)

    do_GET = do_POST
    do_PUT = do_POST
    do_PATCH = do_POST
    do_DELETE = do_POST

    def _read_body(self) -> bytes | Refusal:
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0 or "chunked" in self.headers.get("transfer-encoding", "").lower():
            return Refusal(411, "invalid_request_error", "send the request body with a valid Content-Length")
        if length > MAX_REQUEST_BODY:
            return Refusal(413, "request_too_large", f"the request body exceeds {MAX_REQUEST_BODY} bytes")
        return self.rfile.read(length) if length else b""

    def _forward(self, proxy: CredentialProxy, grant: Grant, headers: list[tuple[str, str]], body: bytes) -> None:
        started = time.monotonic()
        try:
            response = proxy.open_upstream(self.command, self.path, headers, body)
        except (httpx.HTTPError, RuntimeError) as exc:
            # RuntimeError: the client was closed by `stop` while this request waited.
            log.error("proxy.upstream_unreachable", session_id=grant.session_id, error=type(exc).__name__)
            self._send_error(Refusal(502, "api_error", f"the model API did not answer ({type(exc).__name__})"))
            return
        meter = UsageMeter(response.headers.get("content-type", ""))
        try:
            self.send_response_only(response.status_code, response.reason_phrase)
            for name, value in client_headers(response.headers.multi_items()):
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in response.iter_bytes():
                if chunk:
                    meter.feed(chunk)
                    self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError as exc:
            self.close_connection = True
            log.info("proxy.client_went_away", session_id=grant.session_id, error=type(exc).__name__)
        except httpx.HTTPError as exc:
            # Mid-response, the only honest signal left is to cut the connection: the client sees a truncated body.
            self.close_connection = True
            log.warning("proxy.upstream_broke_off", session_id=grant.session_id, error=type(exc).__name__)
        finally:
            response.close()
            proxy.record(grant, meter.result())
        log.debug(
            "proxy.forwarded",
            session_id=grant.session_id,
            group_id=grant.agent_group_id,
            path=self.path,
            status=response.status_code,
            ms=round((time.monotonic() - started) * 1000, 1),
        )

    def _send_error(self, refusal: Refusal) -> None:
        """An Anthropic-shaped error (so the agent's SDK reports it well); the connection closes after it."""
        payload = {"type": "error", "error": {"type": refusal.error_type, "message": f"hermitcrab: {refusal.message}"}}
        data = json.dumps(payload).encode()
        self.close_connection = True
        self.send_response(refusal.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
