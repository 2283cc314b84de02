"""The transport's behaviours on its direct path (RegistrySession.send_direct and one-read bodies), on real registries.

Every request below must reach the registry through ``send_direct`` (never requests' full
``Session.request``) and every document must be read in one ``read()`` (``body.read_whole``): the
spies fail the test otherwise. The behaviours are the transport's usual ones: the auth step, a retry
after 503, a body cut midway, a redirect, TLS with a private CA and the manifest size cap.
"""
from __future__ import annotations

import re
import socket
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import urllib3.connection
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import Credentials
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport import body
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport import session as session_module
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport import wire
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.session import RegistrySession
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import TooLargeError, TransportError
from tests.rig import images
from tests.rig.fault_proxy import FaultProxy, ProxyRequest, Reply, proxy_pool
from tests.rig.images import RawPusher
from tests.rig.registry_server import free_port

IMAGE = images.make_image("direct", layers=1, layer_size=1024)


@dataclass
class Paths:
    """What the spies saw: URLs sent on requests' full path, one-read bodies, and their failures."""

    full: list[str] = field(default_factory=list)
    whole: int = 0
    cut: list[str] = field(default_factory=list)

    def full_to(self, host: str) -> list[str]:
        return [url for url in self.full if f"//{host}/" in url]


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Paths:
    seen = Paths()
    full_request = RegistrySession.request
    read_whole = body.read_whole

    def recording_request(self: RegistrySession, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        seen.full.append(url)
        return full_request(self, method, url, *args, **kwargs)

    def recording_read_whole(response: Any) -> bytes | None:
        try:
            content = read_whole(response)
        except Exception as exc:
            seen.cut.append(type(exc).__name__)
            raise
        seen.whole += content is not None
        return content

    monkeypatch.setattr(RegistrySession, "request", recording_request)
    monkeypatch.setattr(body, "read_whole", recording_read_whole)
    return seen


@pytest.fixture
def proxies() -> Iterator[Callable[..., FaultProxy]]:
    with proxy_pool() as start:
        yield start


def client(host: str, registry: Any = None, **options: Any) -> Registry:
    credentials = None
    if registry is not None and registry.username:
        credentials = Credentials(username=registry.username, password=registry.password)
    settings = {"plain_http": True, "retries": 2, "timeout": (5.0, 10.0), "sleep": lambda _s: None, **options}
    return Registry(host, TransportOptions(**settings), credentials)


def read_all(repository: Any) -> None:
    """The three hot requests, each twice: the second of each on a kept connection."""
    for _round in range(2):
        assert repository.resolve("v1").digest == IMAGE.digest
        assert repository.fetch_manifest("v1").raw == IMAGE.data
        assert repository.tags() == ["v1"]


def test_the_auth_step_answers_the_challenge_on_the_direct_path(token_registry: Any, paths: Paths) -> None:
    RawPusher.for_registry(token_registry).push("src/app", IMAGE, tag="v1")
    mark = token_registry.mark()
    read_all(client(token_registry.host, token_registry).repository("src/app"))
    sent = [(r.method, r.status) for r in token_registry.requests_since(mark)]
    assert sent[:2] == [("HEAD", 401), ("HEAD", 200)]  # one challenge, answered, then sent again
    assert len(sent) == 7 and all(status == 200 for _method, status in sent[1:])
    assert paths.full_to(token_registry.host) == []
    assert paths.whole == 6  # 2 HEADs and 4 documents, each in one read


def test_a_503_is_retried_on_the_direct_path(plain_registry: Any, proxies: Callable[..., FaultProxy],
                                             paths: Paths) -> None:
    RawPusher.for_registry(plain_registry).push("src/app", IMAGE, tag="v1")
    proxy = proxies(plain_registry)
    proxy.add("503", method="GET", path=r"/manifests/", times=1)
    sleeps: list[float] = []
    manifest = client(proxy.host, sleep=sleeps.append).repository("src/app").fetch_manifest("v1")
    assert manifest.raw == IMAGE.data
    assert [i.kind for i in proxy.injected] == ["503"] and len(sleeps) == 1
    assert paths.full_to(proxy.host) == []


def test_a_document_cut_midway_is_fetched_again(plain_registry: Any, proxies: Callable[..., FaultProxy],
                                                paths: Paths) -> None:
    RawPusher.for_registry(plain_registry).push("src/app", IMAGE, tag="v1")
    proxy = proxies(plain_registry)
    proxy.add("truncate", method="GET", path=r"/manifests/", times=1)
    assert client(proxy.host).repository("src/app").fetch_manifest(IMAGE.digest).raw == IMAGE.data
    assert [i.kind for i in proxy.injected] == ["truncate"]
    assert paths.cut == ["ChunkedEncodingError"]  # the one read broke off, as requests' reading says it
    assert paths.full_to(proxy.host) == []


def test_a_redirect_is_followed_on_the_direct_path(plain_registry: Any, proxies: Callable[..., FaultProxy],
                                                   paths: Paths) -> None:
    RawPusher.for_registry(plain_registry).push("src/app", IMAGE, tag="v1")
    other = HTTPServer(host="127.0.0.1", port=free_port(), threaded=True)
    other.start()
    try:
        other.expect_request(re.compile(r"^/moved/")).respond_with_handler(
            lambda _req: Response(IMAGE.data, content_type=IMAGE.media_type))

        def moved(req: ProxyRequest, reply: Reply) -> Reply:
            return Reply(307, [("Location", other.url_for(f"/moved/{req.route.rsplit('/', 1)[1]}"))], b"", 0)

        proxy = proxies(plain_registry)
        proxy.add("rewrite", method="GET", path=r"/manifests/", times=None, handler=moved)
        assert client(proxy.host).repository("src/app").fetch_manifest(IMAGE.digest).raw == IMAGE.data
        seen: list[Request] = [entry[0] for entry in other.log]
        assert [r.path for r in seen] == [f"/moved/{IMAGE.digest}"]
        assert paths.full_to(proxy.host) == [] and paths.full_to(f"127.0.0.1:{other.port}") == []
        assert paths.whole == 1
    finally:
        other.clear()
        other.stop()


def test_a_tls_registry_with_a_private_ca_on_the_direct_path(tls_registry: Any, paths: Paths) -> None:
    RawPusher.for_registry(tls_registry).push("src/app", IMAGE, tag="v1")
    registry = client(tls_registry.host, tls_registry, plain_http=None, ca_path=tls_registry.ca_path)
    read_all(registry.repository("src/app"))
    assert registry.transport.base_url.startswith("https://")
    assert paths.full_to(tls_registry.host) == [] and paths.whole == 6


def test_the_manifest_cap_holds_on_the_direct_path(plain_registry: Any, paths: Paths) -> None:
    RawPusher.for_registry(plain_registry).push("src/app", IMAGE, tag="v1")
    repository = client(plain_registry.host, max_manifest_bytes=len(IMAGE.data) - 1).repository("src/app")
    mark = plain_registry.mark()
    with pytest.raises(TooLargeError, match=f"{len(IMAGE.data)} bytes, over the {len(IMAGE.data) - 1} byte limit"):
        repository.fetch_manifest(IMAGE.digest)
    assert len(plain_registry.requests_since(mark)) == 1  # refused, not retried
    assert paths.whole == 0 and paths.full_to(plain_registry.host) == []


@pytest.fixture
def kept_alive(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The type of each response ``wire.send_kept_alive`` answered (None: left to urllib3's urlopen)."""
    answered: list[str] = []
    send = session_module.send_kept_alive

    def recording(*args: Any, **kwargs: Any) -> Any:
        raw, retries = send(*args, **kwargs)
        answered.append(type(raw).__name__)
        return raw, retries

    monkeypatch.setattr(session_module, "send_kept_alive", recording)
    return answered


@pytest.mark.skipif(not wire.SUPPORTED, reason="urllib3 other than 2.x: the path is declined")
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_kept_alive_requests_go_out_below_urlopen(plain_registry: Any, tls_registry: Any, kept_alive: list[str],
                                                  scheme: str) -> None:
    registry_server = plain_registry if scheme == "http" else tls_registry
    RawPusher.for_registry(registry_server).push("src/app", IMAGE, tag="v1")
    options = {} if scheme == "http" else {"plain_http": None, "ca_path": registry_server.ca_path}
    registry = client(registry_server.host, **options)
    mark = registry_server.mark()
    read_all(registry.repository("src/app"))
    assert registry.transport.base_url.startswith(f"{scheme}://")
    assert len(registry_server.requests_since(mark)) == 6
    # The first opens the connection through urllib3 (with its TLS set-up); the other five reuse it below urlopen.
    assert kept_alive == ["NoneType"] + ["KeptAliveResponse"] * 5


def test_a_tls_registry_is_refused_without_its_ca_after_a_verified_connection(tls_registry: Any) -> None:
    # A connection verified with the CA is kept by that client's pool only: a client without the CA is refused.
    RawPusher.for_registry(tls_registry).push("src/app", IMAGE, tag="v1")
    read_all(client(tls_registry.host, plain_http=None, ca_path=tls_registry.ca_path).repository("src/app"))
    with pytest.raises(TransportError, match=f"TLS certificate verify failed for {re.escape(tls_registry.host)}"):
        client(tls_registry.host, plain_http=None).repository("src/app").resolve("v1")


@pytest.mark.skipif(not wire.SUPPORTED, reason="urllib3 other than 2.x: the path is declined")
def test_a_pooled_connection_closed_meanwhile_is_opened_again(plain_registry: Any, kept_alive: list[str]) -> None:
    # Distribution keeps idle connections for minutes, so the test ends the pooled connection itself: it shuts
    # the socket down (both directions), which is what a connection the server closed looks like to the client.
    RawPusher.for_registry(plain_registry).push("src/app", IMAGE, tag="v1")
    registry = client(plain_registry.host, retries=0)
    repository = registry.repository("src/app")
    read_all(repository)
    pooled = [conn for pool in registry.transport.session._pools.values()  # pylint: disable=protected-access
              for conn in list(pool.pool.queue) if conn is not None and conn.sock is not None]
    assert len(pooled) == 1
    pooled[0].sock.shutdown(socket.SHUT_RDWR)
    kept_alive.clear()
    mark = plain_registry.mark()
    read_all(repository)  # no error, no retry (retries=0 would fail on one)
    assert len(plain_registry.requests_since(mark)) == 6
    assert kept_alive == ["NoneType"] + ["KeptAliveResponse"] * 5  # found dropped, opened again by urllib3


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every TCP connect the client's transport makes (urllib3 re-opens a closed pooled connection without a new
    object, so its pool counters miss them); the rig's own requests (pushes, access-log syncs) are left out."""
    made: list[str] = []
    original = urllib3.connection.HTTPConnection.connect

    def counting(self: Any) -> None:
        if any("/_client/transport/" in frame.filename for frame in traceback.extract_stack()):
            made.append(f"{self.host}:{self.port}")
        original(self)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", counting)
    return made


def test_a_retried_503_keeps_its_connection(plain_registry: Any, proxies: Callable[..., FaultProxy],
                                            connects: list[str]) -> None:
    # The 503's small body is read before the retry, not dropped with its connection: the retry goes out on the
    # same connection (no new TCP or TLS handshake for an answer the client only waits out).
    RawPusher.for_registry(plain_registry).push("src/app", IMAGE, tag="v1")
    proxy = proxies(plain_registry)
    proxy.add("503", method="GET", path=r"/manifests/", times=1)
    registry = client(proxy.host)
    assert registry.repository("src/app").fetch_manifest("v1").raw == IMAGE.data
    assert [i.kind for i in proxy.injected] == ["503"]
    assert connects.count(proxy.host) == 1


def test_the_challenge_answer_keeps_its_connection(token_registry: Any, connects: list[str]) -> None:
    # A 401's small body is read, not dropped with its connection: the request sent again with the token goes
    # out on the same connection, so the auth step costs no new TCP (or TLS) handshake.
    RawPusher.for_registry(token_registry).push("src/app", IMAGE, tag="v1")
    registry = client(token_registry.host, token_registry)
    mark = token_registry.mark()
    repository = registry.repository("src/app")
    assert repository.fetch_manifest("v1").raw == IMAGE.data  # a GET: its 401 carries a JSON body
    read_all(repository)
    assert [(r.method, r.status) for r in token_registry.requests_since(mark)][:2] == [("GET", 401), ("GET", 200)]
    assert connects.count(token_registry.host) == 1
