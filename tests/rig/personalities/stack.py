"""The personality stack: three small listeners that make one Distribution behave like a named registry.

A :class:`PersonalityStack` puts, in front of one real token-auth Distribution 2.8
(:class:`tests.rig.flavours.RigRegistry`) and its JWT token server
(:class:`tests.rig.token_server.TokenServer`):

``front``
    The registry the client talks to (``stack.host``). Every request runs
    through the personality's registry-side quirks (``before`` may rewrite the
    request or answer it outright, ``after`` rewrites the real answer). The
    ``WWW-Authenticate`` realm is pointed at ``token`` so the client never sees
    the real token server.
``token``
    Fronts the token server; token-side quirks (OAuth2 POST refused, ``token``
    vs ``access_token``, no ``expires_in``) apply here.
``storage``
    A "storage host / CDN": blobs the front redirects (``blob_redirect``) are
    served here from the registry's filesystem through signed URLs; storage
    quirks (400 when ``Authorization`` is also sent, ``Range`` ignored) apply.

All three are :class:`tests.rig.fault_proxy.FaultProxy` instances with one
catch-all ``respond`` rule, so they reuse its HTTP server, chunked-body
handling and request records (``stack.front.requests`` etc.).

Several stacks may share one Distribution: each personality works in its own
repository namespace, so their state never meets.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import trustme

from tests.rig.fault_proxy import FaultProxy, ProxyRequest, Reply, _oci_error
from tests.rig.flavours import RigRegistry
from tests.rig.images import Content
from tests.rig.token_server import TokenServer

#: ``/v2/<name>/<kind>/<reference>``; ``name`` is greedy up to the last API keyword.
API_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags|referrers)(?:/(?P<ref>.*))?$")
SIGNING_KEY = b"ocireg-personality-storage-key"

Before = Callable[["PersonalityStack", ProxyRequest], "ProxyRequest | Reply | None"]
After = Callable[["PersonalityStack", ProxyRequest, Reply], Reply]
Seed = Callable[[Content], Content]


@dataclass(frozen=True)
class Quirk:
    """One recorded behaviour of one registry, as a small rewrite.

    ``side`` is where it applies (``registry``, ``token`` or ``storage``).
    ``before`` sees the request first and may return a changed request or an
    answer (the upstream is then not asked); ``after`` rewrites the upstream's
    answer. ``seed`` rewrites the content the suite seeds into this registry:
    for what a registry *holds* differently (manifests stored without a
    top-level ``mediaType``), which no rewrite of an answer can fake without
    changing the digest. ``source`` says where the behaviour was recorded.
    """

    name: str
    summary: str
    source: str
    side: str = "registry"
    before: Before | None = None
    after: After | None = None
    seed: Seed | None = None


def api_parts(request: ProxyRequest) -> tuple[str, str, str] | None:
    """``(name, kind, reference)`` of a ``/v2/<name>/<kind>/<ref>`` route, else None."""
    match = API_PATH.match(request.route)
    if not match:
        return None
    return match["name"], match["kind"], match["ref"] or ""


def query(request: ProxyRequest) -> dict[str, list[str]]:
    """The request's query parameters."""
    return parse_qs(urlsplit(request.path).query, keep_blank_values=True)


def with_path(request: ProxyRequest, path: str) -> ProxyRequest:
    """A copy of ``request`` sent to ``path`` (query string included)."""
    return ProxyRequest(request.method, path, dict(request.headers), request.body)


def with_query(request: ProxyRequest, params: dict[str, list[str]]) -> ProxyRequest:
    """A copy of ``request`` with its query string replaced."""
    encoded = urlencode([(k, v) for k, values in params.items() for v in values])
    return with_path(request, request.route + (f"?{encoded}" if encoded else ""))


def oci_error(status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    """An OCI error body answer."""
    return _oci_error(status, code, message, headers or [])


def html(status: int, text: str = "<html><body><h1>Sign in</h1></body></html>") -> Reply:
    """An HTML page, as a proxy or login wall sends it."""
    body = text.encode()
    return Reply(status, [("Content-Type", "text/html; charset=utf-8")], body, len(body))


class PersonalityStack:
    """Front, token and storage listeners of one personality over one registry + token server."""

    def __init__(self, name: str, quirks: tuple[Quirk, ...], registry: RigRegistry, token_server: TokenServer,
                 *, tls_ca: trustme.CA | None = None) -> None:
        self.name = name
        self.quirks = quirks
        self.registry = registry
        self.token_server = token_server
        self.state: dict[str, Any] = {}  # stateful quirks (one-shot rate limits) keep their counters here
        self.front = FaultProxy(registry.url)
        self.token = FaultProxy(f"http://{token_server.host}")
        # The storage host never forwards: it serves blob files itself.
        self.storage = FaultProxy("http://127.0.0.1:9")
        for proxy, side in ((self.front, "registry"), (self.token, "token"), (self.storage, "storage")):
            proxy.add("respond", handler=self._handler(proxy, side), times=None)
        if tls_ca is not None:
            # A TLS-terminating proxy: the client speaks https to the front, the registry behind it sees
            # plain HTTP (and builds its upload Locations as http://, distribution #123).
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            httpd = self.front._httpd
            # The handshake runs in the handler thread (first read), not in the accepting loop.
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> PersonalityStack:
        """Start the three listeners."""
        for proxy in (self.front, self.token, self.storage):
            proxy.start()
        return self

    def stop(self) -> None:
        """Stop the three listeners (the registry and token server belong to the caller)."""
        for proxy in (self.front, self.token, self.storage):
            proxy.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """The host the client uses (``127.0.0.1:PORT`` of the front)."""
        return self.front.host

    def has(self, quirk: str) -> bool:
        """Whether this personality carries the quirk called ``quirk``."""
        return any(q.name == quirk for q in self.quirks)

    # -- the pipeline ----------------------------------------------------------------
    def _handler(self, proxy: FaultProxy, side: str) -> Callable[[ProxyRequest], Reply]:
        quirks = [q for q in self.quirks if q.side == side]

        def handle(request: ProxyRequest) -> Reply:
            for quirk in quirks:
                if quirk.before is None:
                    continue
                outcome = quirk.before(self, request)
                if isinstance(outcome, Reply):
                    return outcome
                if outcome is not None:
                    request = outcome
            if side == "storage":
                reply = self.serve_blob(request)
            else:
                reply = proxy.forward(request)
                if side == "registry":
                    reply = self._point_realm_at_token_front(reply)
            for quirk in quirks:
                if quirk.after is not None:
                    reply = quirk.after(self, request, reply)
            return reply

        return handle

    def _point_realm_at_token_front(self, reply: Reply) -> Reply:
        challenge = reply.header("WWW-Authenticate")
        if challenge is None:
            return reply
        return reply.with_header("WWW-Authenticate", challenge.replace(self.token_server.host, self.token.host))

    def forward(self, request: ProxyRequest) -> Reply:
        """Ask the real registry (quirks use it to look things up)."""
        return self.front.forward(request)

    # -- storage host ----------------------------------------------------------------
    def signed_url(self, digest: str, ttl: int = 600) -> str:
        """A storage-host URL for ``digest`` signed like a pre-signed S3/GCS URL."""
        expires = str(int(time.time()) + ttl)
        signature = hmac.new(SIGNING_KEY, f"{digest}:{expires}".encode(), hashlib.sha256).hexdigest()
        return f"http://{self.storage.host}/blobs/{digest}?{urlencode({'X-Expires': expires, 'X-Signature': signature})}"

    def blob_path(self, digest: str) -> Path:
        """Where Distribution's filesystem driver keeps the blob ``digest``."""
        algorithm, _sep, hexpart = digest.partition(":")
        return self.registry.storage / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"

    def serve_blob(self, request: ProxyRequest) -> Reply:
        """Answer a signed blob URL (200, or 206 for a ``Range``) from the registry's files."""
        match = re.match(r"^/blobs/(sha256:[0-9a-f]{64})$", request.route)
        params = {k: v[0] for k, v in query(request).items()}
        if not match or request.method not in ("GET", "HEAD"):
            return Reply(404, [("Content-Type", "application/xml")], b"<Error><Code>NoSuchKey</Code></Error>")
        digest = match[1]
        expected = hmac.new(SIGNING_KEY, f"{digest}:{params.get('X-Expires', '')}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params.get("X-Signature", "")) or int(params.get("X-Expires", 0)) < time.time():
            return Reply(403, [("Content-Type", "application/xml")], b"<Error><Code>AccessDenied</Code></Error>")
        path = self.blob_path(digest)
        if not path.exists():
            return Reply(404, [("Content-Type", "application/xml")], b"<Error><Code>NoSuchKey</Code></Error>")
        data = path.read_bytes()
        headers = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes"), ("ETag", f'"{digest}"')]
        wanted = re.match(r"^bytes=(\d+)-(\d*)$", request.headers.get("Range", ""))
        if wanted:
            start = int(wanted[1])
            end = int(wanted[2]) if wanted[2] else len(data) - 1
            part = data[start:end + 1]
            headers.append(("Content-Range", f"bytes {start}-{start + len(part) - 1}/{len(data)}"))
            if request.method == "HEAD":
                return Reply(206, [*headers, ("Content-Length", str(len(part)))], b"", None)
            return Reply(206, headers, part, len(part))
        if request.method == "HEAD":
            return Reply(200, [*headers, ("Content-Length", str(len(data)))], b"", None)
        return Reply(200, headers, data, len(data))


@dataclass
class PersonalityData:
    """What the docs table and the tests need to know about one registry besides its quirks."""

    key: str
    title: str
    quirks: tuple[Quirk, ...]
    #: Steps the registry refuses by design: step -> (why, regex the module's message must match).
    refuses: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: What a user sets for this registry (docs).
    settings: tuple[str, ...] = ()
    #: Rig-only scaling (a page size shrunk so a handful of tags spans pages), with the real value.
    notes: tuple[str, ...] = ()
    #: The front speaks TLS (a TLS-terminating proxy before the registry); the suite passes the rig CA.
    tls: bool = False

    def has(self, quirk: str) -> bool:
        """Whether this registry carries the quirk called ``quirk``."""
        return any(q.name == quirk for q in self.quirks)

    def seeded(self, content: Content) -> Content:
        """``content`` as this registry holds it (every ``seed`` quirk applied)."""
        for quirk in self.quirks:
            if quirk.seed is not None:
                content = quirk.seed(content)
        return content
