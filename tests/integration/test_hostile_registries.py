"""Hostile servers: what a broken or malicious registry sends is refused at its cap or its digest.

A real Distribution 2.8 registry serves everything that is honest; the
hostile part is faked, because no real registry sends endless manifests, lies
about digests, redirects credentials elsewhere or pages forever:

* :class:`~tests.rig.fault_proxy.FaultProxy` sits in front of the real
  registry and replaces (``respond``) or alters (``rewrite``) chosen answers;
  everything else is the registry's own.
* A ``pytest-httpserver`` plays the *other* host: blob storage a registry
  redirects to, or a token service a registry's challenge names. It records
  what it received, which is what the tests check.

Each test shows that the attack was really mounted (the proxy or the other
host saw it) and that the client refused it with a typed error, one line,
before writing anything.
"""
from __future__ import annotations

import ipaddress
import itertools
import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ansible_collections.ocireg.registry.plugins.module_utils._client import pagination
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import CopyOptions, copy_image
from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import Credentials
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    TooLargeError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import is_loopback
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    DEFAULT_MAX_ERROR_BYTES,
    DEFAULT_MAX_MANIFEST_BYTES,
    DEFAULT_MAX_TOKEN_BYTES,
    TransportOptions,
)
from tests.rig import images
from tests.rig.fault_proxy import FaultProxy, ProxyRequest, Reply, proxy_pool
from tests.rig.images import RawPuller, RawPusher
from tests.rig.registry_server import free_port

IMAGE = images.make_image("hostile", layers=2, layer_size=64 * 1024)
OTHER = images.make_image("impostor", layers=1, layer_size=1024)
MiB = 1024 * 1024


def _socket_slack() -> int:
    """What can be in flight beyond what a client read: the largest kernel socket buffers on both ends."""
    total = MiB  # the proxy's pieces and Python-side buffering
    for name in ("tcp_rmem", "tcp_wmem"):
        try:
            total += int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])
        except (OSError, IndexError, ValueError):
            total += 8 * MiB
    return total


#: Bytes an endless body may have handed out beyond a cap without the client reading them.
SOCKET_SLACK = _socket_slack()


@pytest.fixture
def proxies() -> Iterator[Callable[..., FaultProxy]]:
    """``proxies(registry, **options)``: a FaultProxy in front of ``registry`` (stopped at teardown)."""
    with proxy_pool() as start:
        yield start


@pytest.fixture
def other_host() -> Iterator[HTTPServer]:
    """Another origin (its own port) that records every request: storage or a token service."""
    server = HTTPServer(host="127.0.0.1", port=free_port(), threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def client(host: str, registry=None, **options) -> Registry:
    """Our client for ``host`` with the credentials ``registry`` accepts (if any); it never sleeps."""
    credentials = None
    if registry is not None and registry.username:
        credentials = Credentials(username=registry.username, password=registry.password)
    settings = {"plain_http": True, "retries": 1, "timeout": (5.0, 10.0), "sleep": lambda _s: None, **options}
    return Registry(host, TransportOptions(**settings), credentials)


def seed(registry) -> None:
    RawPusher.for_registry(registry).push("src/app", IMAGE, tag="v1")


class Endless:
    """A body far beyond any cap (256 MiB) in 64 KiB pieces, counting what it handed out.

    The proxy stops pulling pieces when the client hangs up. It is finite only
    so that a client without a cap fails the test instead of hanging it.
    """

    def __init__(self, piece: bytes = b" " * 65536, prefix: bytes = b"", total: int = 256 * MiB) -> None:
        self.piece = piece
        self.prefix = prefix
        self.total = total
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        self.sent += len(self.prefix)
        yield self.prefix
        while self.sent < self.total:
            self.sent += len(self.piece)
            yield self.piece


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text, repr(text)
    return text


# --- size caps ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_endless_manifest_is_refused_at_the_cap(plain_registry, proxies, declared):
    seed(plain_registry)
    proxy = proxies(plain_registry)
    body = Endless(prefix=b'{"schemaVersion": 2, "padding": "')
    length = 5 * 1024 * MiB if declared else None
    proxy.add("rewrite", method="GET", path=r"/manifests/", times=None,
              handler=lambda request, reply: Reply(200, reply.headers, body, length))
    with pytest.raises(TooLargeError) as caught:
        client(proxy.host).repository("src/app").fetch_manifest("v1")
    assert f"{DEFAULT_MAX_MANIFEST_BYTES} byte limit" in one_line(caught.value)
    assert body.sent < DEFAULT_MAX_MANIFEST_BYTES + SOCKET_SLACK  # the client hung up; it did not read on
    assert [r.fault for r in proxy.requests] == ["rewrite"]  # refused, not retried


def test_an_endless_error_body_is_read_only_to_its_cap(plain_registry, proxies):
    proxy = proxies(plain_registry)
    body = Endless(prefix=b'{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "' + b"x" * 100)
    proxy.add("respond", method="GET", path=r"/manifests/", times=None,
              handler=lambda request: Reply(404, [("Content-Type", "application/json")], body, None))
    with pytest.raises(NotFoundError) as caught:
        client(proxy.host).repository("src/app").fetch_manifest("v1")
    assert len(one_line(caught.value)) < 1000  # the body is not echoed
    assert body.sent < DEFAULT_MAX_ERROR_BYTES + SOCKET_SLACK


def test_an_oversized_token_answer_is_refused(token_registry, proxies, other_host):
    """The registry's challenge is rewritten to name a token service that answers with 2 MiB."""
    other_host.expect_request("/token").respond_with_data(
        json.dumps({"token": "t" * (2 * MiB)}), content_type="application/json")
    proxy = proxies(token_registry)
    proxy.add("rewrite", times=None, handler=_realm_swap(other_host.url_for("/token")))
    with pytest.raises(TooLargeError) as caught:
        client(proxy.host, token_registry).repository("src/app").tags()
    assert f"{DEFAULT_MAX_TOKEN_BYTES}-byte limit" in one_line(caught.value)
    assert len(other_host.log) >= 1


# --- digests -----------------------------------------------------------------------------------------------


def _impostor(request: ProxyRequest, reply: Reply) -> Reply:
    """Another image's manifest, with a Docker-Content-Digest that matches it (a consistent liar)."""
    if reply.status != 200:
        return reply
    body = OTHER.data
    return Reply(200, [("Content-Type", OTHER.media_type), ("Docker-Content-Digest", OTHER.digest)], body, len(body))


def test_a_manifest_that_does_not_match_the_requested_digest_is_refused(plain_registry, registry_factory, proxies):
    seed(plain_registry)
    dest_registry = registry_factory()
    proxy = proxies(plain_registry)
    proxy.add("rewrite", method="GET", path=rf"/manifests/{IMAGE.digest}$", times=None, handler=_impostor)
    mark = dest_registry.mark()
    with pytest.raises(DigestMismatchError) as caught:
        copy_image(client(proxy.host).repository("src/app"), "v1", client(dest_registry.host).repository("dst/app"),
                   ["v1"], CopyOptions())
    assert IMAGE.digest in one_line(caught.value)
    assert any(r.fault == "rewrite" for r in proxy.requests)
    assert dest_registry.writes_since(mark) == []  # refused before a single write


def test_a_manifest_by_tag_must_match_the_digest_the_registry_announces(plain_registry, proxies):
    seed(plain_registry)
    proxy = proxies(plain_registry)

    def swap_body(request: ProxyRequest, reply: Reply) -> Reply:
        return Reply(reply.status, reply.headers, OTHER.data, len(OTHER.data))  # header still says IMAGE

    proxy.add("rewrite", method="GET", path=r"/manifests/v1$", handler=swap_body)
    with pytest.raises(DigestMismatchError):
        client(proxy.host).repository("src/app").fetch_manifest("v1")


# --- redirects and token realms ------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["basic_registry", "token_registry"])
def test_a_redirect_to_another_host_never_carries_authorization(request, flavour, proxies, other_host,
                                                                registry_factory):
    """Blob downloads are redirected to "storage" on another origin; the copy completes without credentials there."""
    registry = request.getfixturevalue(flavour)
    RawPusher.for_registry(registry).push("src/app", IMAGE, tag="v1")
    blobs = {blob.digest: blob.data for blob in IMAGE.blobs()}

    def storage(req: Request) -> Response:
        return Response(blobs[req.path.rsplit("/", 1)[1]], content_type="application/octet-stream")

    other_host.expect_request(re.compile(r"^/storage/sha256:[0-9a-f]{64}$")).respond_with_handler(storage)

    def to_storage(req: ProxyRequest, reply: Reply) -> Reply:
        if reply.status != 200:
            return reply  # challenges go through untouched
        digest = req.route.rsplit("/", 1)[1]
        return Reply(307, [("Location", other_host.url_for(f"/storage/{digest}"))], b"", 0)

    proxy = proxies(registry)
    proxy.add("rewrite", method="GET", path=r"/blobs/sha256:", times=None, handler=to_storage)
    dest_registry = registry_factory()
    result = copy_image(client(proxy.host, registry).repository("src/app"), "v1",
                        client(dest_registry.host).repository("dst/app"), ["v1"], CopyOptions())
    assert result.digest == IMAGE.digest
    assert RawPuller.for_registry(dest_registry).pull("dst/app", "v1").digest == IMAGE.digest
    redirected = [r for r in proxy.requests if r.fault == "rewrite" and r.status == 307]
    assert len(redirected) == len(blobs) and all(r.authorization for r in redirected)  # credentials were in play
    assert len(other_host.log) == len(blobs)
    assert [dict(req.headers).get("Authorization") for req, _resp in other_host.log] == [None] * len(blobs)


def _realm_swap(realm: str) -> Callable[[ProxyRequest, Reply], Reply]:
    """A rewrite that replaces the realm of every 401 challenge (service and scope stay)."""
    def swap(request: ProxyRequest, reply: Reply) -> Reply:
        challenge = reply.header("WWW-Authenticate")
        if reply.status != 401 or not challenge:
            return reply
        return reply.with_header("WWW-Authenticate", re.sub(r'realm="[^"]*"', f'realm="{realm}"', challenge))
    return swap


def other_host_name() -> tuple[str, str]:
    """A name of this machine that reads as another host, and the local address it resolves to.

    The client judges a realm by its host as written (loopback addresses and ``localhost`` are this
    machine: a loopback alias such as 127.0.0.2 would be allowed, not refused). The machine's own
    hostname is a plain name, so to the client it is another host, yet it resolves to an address
    here that a recorder can listen on: no network, route or namespace needed.
    """
    name = socket.gethostname()
    if not name or is_loopback(name) or _is_ip(name):
        pytest.fail(f"this machine's hostname {name!r} is loopback or an address: the test needs a plain name",
                    pytrace=False)
    try:
        address = socket.gethostbyname(name)
    except OSError as exc:
        pytest.fail(f"this machine's hostname {name!r} does not resolve ({exc}): add it to /etc/hosts", pytrace=False)
    return name, address


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@pytest.fixture
def other_host_token_service() -> Iterator[tuple[HTTPServer, str]]:
    """A recording "token service" on another host by name; yields it and its realm URL."""
    name, address = other_host_name()
    server = HTTPServer(host=address, port=0)
    server.expect_request("/token").respond_with_json({"token": "stolen"})
    server.start()
    realm = f"http://{name}:{server.port}/token"
    # The recorder answers under that name, so an empty log below means the client never asked it.
    assert requests.get(realm, timeout=10).json() == {"token": "stolen"}
    server.clear_log()
    yield server, realm
    server.clear()
    if server.is_running():
        server.stop()


def test_a_plain_http_realm_on_another_host_gets_no_credentials(token_registry, proxies, other_host_token_service):
    token_service, realm = other_host_token_service
    proxy = proxies(token_registry)
    proxy.add("rewrite", times=None, handler=_realm_swap(realm))
    with pytest.raises(AuthenticationError) as caught:
        client(proxy.host, token_registry).repository("src/app").tags()
    message = one_line(caught.value)
    assert "plain HTTP" in message or "unencrypted" in message
    assert any(r.fault == "rewrite" and r.status == 401 for r in proxy.requests)  # the challenge named it
    assert token_service.log == []  # refused before connecting
    assert token_registry.password not in message


@pytest.mark.parametrize("realm", [
    "ftp://127.0.0.1/token",
    "file:///etc/passwd",
    "http://alice:secret@127.0.0.1:{port}/token",
    "//127.0.0.1:{port}/token",
    "https://127.0.0.1:{port}/token",  # TLS to a plain-HTTP server: the handshake fails, nothing is sent
])
def test_unusable_token_realms_are_refused_without_sending_anything(token_registry, proxies, other_host, realm):
    other_host.expect_request("/token").respond_with_json({"token": "stolen"})
    proxy = proxies(token_registry)
    proxy.add("rewrite", times=None, handler=_realm_swap(realm.format(port=other_host.port)))
    with pytest.raises(RegistryError) as caught:
        client(proxy.host, token_registry).repository("src/app").tags()
    assert isinstance(caught.value, (AuthenticationError, TransportError))
    assert token_registry.password not in one_line(caught.value)
    assert any(r.fault == "rewrite" and r.status == 401 for r in proxy.requests)
    assert other_host.log == []


# --- pagination ------------------------------------------------------------------------------------------------


def _linking(next_of: Callable[[ProxyRequest], str]) -> Callable[[ProxyRequest, Reply], Reply]:
    def add_link(request: ProxyRequest, reply: Reply) -> Reply:
        return reply.with_header("Link", f'<{next_of(request)}>; rel="next"')
    return add_link


def test_a_link_loop_is_detected(plain_registry, proxies):
    seed(plain_registry)
    proxy = proxies(plain_registry)
    pages = {"/v2/src/app/tags/list?n=1000": "/v2/src/app/tags/list?n=1000&last=v1",
             "/v2/src/app/tags/list?n=1000&last=v1": "/v2/src/app/tags/list?n=1000"}
    proxy.add("rewrite", method="GET", path=r"/tags/list", times=None, handler=_linking(lambda r: pages[r.path]))
    with pytest.raises(TransportError, match="page already read") as caught:
        client(proxy.host).repository("src/app").tags()
    one_line(caught.value)
    assert len(proxy.requests) == 2


def test_endless_new_pages_stop_at_the_page_limit(plain_registry, proxies, monkeypatch):
    """Every page links to a page never seen before: only the page limit can stop it (lowered here to 25)."""
    monkeypatch.setattr(pagination, "MAX_PAGES", 25)
    seed(plain_registry)
    proxy = proxies(plain_registry)
    counter = itertools.count()
    proxy.add("rewrite", method="GET", path=r"/tags/list", times=None,
              handler=_linking(lambda r: f"/v2/src/app/tags/list?n=1000&last=v{next(counter)}"))
    with pytest.raises(TransportError, match="more than 25 pages") as caught:
        client(proxy.host).repository("src/app").tags()
    one_line(caught.value)
    assert len(proxy.requests) == 25


# --- the same through ansible-playbook -----------------------------------------------------------------------


def test_modules_refuse_hostile_answers_in_one_line(plain_registry, registry_factory, proxies, run_playbook):
    """registry_manifest_info, registry_copy and the lookup against an endless manifest, an impostor and a Link loop."""
    seed(plain_registry)
    dest_registry = registry_factory()
    endless = proxies(plain_registry)
    endless.add("rewrite", method="GET", path=r"/manifests/", times=None,
                handler=lambda request, reply: Reply(200, reply.headers, Endless(), None))
    liar = proxies(plain_registry)
    liar.add("rewrite", method="GET", path=r"/manifests/sha256:", times=None, handler=_impostor)
    looping = proxies(plain_registry)
    looping.add("rewrite", method="GET", path=r"/tags/list", times=None, handler=_linking(lambda r: r.path))
    mark = dest_registry.mark()
    run = run_playbook(tasks=[
        {"name": "endless", "ignore_errors": True,
         "ocireg.registry.registry_manifest_info": {"reference": f"{endless.host}/src/app:v1"}},
        {"name": "liar info", "ignore_errors": True,
         "ocireg.registry.registry_manifest_info": {"reference": f"{liar.host}/src/app@{IMAGE.digest}"}},
        {"name": "liar copy", "ignore_errors": True, "ocireg.registry.registry_copy": {
            "src": f"{liar.host}/src/app:v1", "dest": f"{dest_registry.host}/dst/app:v1"}},
        {"name": "loop", "ignore_errors": True, "ansible.builtin.debug": {
            "msg": f"{{{{ lookup('ocireg.registry.registry', '{looping.host}/src/app', query='tags') }}}}"}},
    ])
    expected = {"endless": "byte limit", "liar info": IMAGE.digest, "liar copy": IMAGE.digest,
                "loop": "page already read"}
    for name, needle in expected.items():
        task = run.task(name)
        assert task.failed, run.explain()
        assert needle in task["msg"] and "\n" not in task["msg"].strip(), task["msg"]
    assert "Traceback" not in run.output
    assert dest_registry.writes_since(mark) == []
