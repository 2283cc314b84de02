"""A fault-injecting HTTP proxy between our client and a real registry.

:class:`FaultProxy` listens on ``127.0.0.1:PORT`` (plain HTTP) and forwards
every request to one upstream registry (a plain-HTTP rig registry). The client
talks to the proxy as if it were the registry: the registry host is
``proxy.host``. The ``Host`` header is passed through unchanged, so the
``Location`` URLs Distribution builds (upload sessions) point back at the proxy
and every later request of a session goes through it too.

Faults (:data:`FAULT_KINDS`), chosen per request:

``500`` / ``502`` / ``503``
    Answer with that status and an OCI-style error body; upstream never sees
    the request.
``429``
    Answer ``429 Too Many Requests`` with ``Retry-After: <retry_after>``
    (seconds) and a ``TOOMANYREQUESTS`` body; upstream never sees the request.
``reset``
    A TCP reset. For a ``GET`` the request is forwarded and the reset comes
    after the headers and half the body (mid-body); any other request is reset
    before it is read or forwarded, so a write never half-happens.
``stall``
    Send nothing for ``stall`` seconds (longer than the client's timeout),
    then close the connection; upstream never sees the request. Stopping the
    proxy ends every stall at once.
``truncate``
    ``GET`` only: forward, send the headers (with the full ``Content-Length``)
    and half the body, then close the connection cleanly.
``flip``
    ``GET`` only (random faults: of ``flip_paths``, blobs by default): forward
    and flip one byte in the middle of the body (same length, so only a
    digest check can notice).

Two ways to choose them:

* **random**: ``FaultProxy(upstream, rate=0.1, kinds=(...), seed=7)`` injects
  a fault into each request with probability ``rate``. Each decision comes
  from a ``random.Random`` seeded with ``(seed, method, path, n)`` where ``n``
  counts earlier requests with the same method and path (all upload-session
  URLs of a repository count as one path), so decisions do not depend on how
  requests to *different* paths interleave. ``max_consecutive`` (default 2)
  bounds how many times in a row one method+path is hit, which models
  *transient* faults: a client that retries more often than that must get
  through. Body faults are only drawn for requests they apply to:
  ``truncate`` and a mid-body ``reset`` for GETs matching ``body_paths``
  (None = every GET; a ``reset`` elsewhere comes before the answer),
  ``flip`` for GETs matching ``flip_paths`` (blobs by default).
* **scripted**: ``proxy.add("503", method="GET", path=r"/manifests/", times=2,
  after=1)`` fires on the matching requests after skipping ``after`` of them,
  ``times`` times (``None`` = forever). Rules are checked in the order added
  and take precedence over random faults.

Hostile answers, for what no real registry would do: ``add("respond",
handler=fn)`` answers with ``fn(request) -> Reply`` without asking upstream;
``add("rewrite", handler=fn)`` forwards, then sends ``fn(request, reply) ->
Reply`` instead of the real answer. A :class:`Reply` whose ``body`` is an
iterable and ``length`` None is sent with chunked encoding (no
``Content-Length``).

Records: :attr:`FaultProxy.requests` (every request: method, path, status
sent, fault, a monotonic timestamp, the ``Authorization`` it carried) and :attr:`FaultProxy.injected` (every fault, with the
``Retry-After`` or stall it carried and a monotonic timestamp);
:meth:`~FaultProxy.counts`, :meth:`~FaultProxy.mark` /
:meth:`~FaultProxy.injected_since`, and :meth:`~FaultProxy.wait_for` (block
until a fault was injected, for tests that kill a run mid-way).
"""
from __future__ import annotations

import http.client
import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

STATUS_KINDS = ("500", "502", "503", "429")
BODY_KINDS = ("truncate", "flip")
FAULT_KINDS = (*STATUS_KINDS, "reset", "stall", *BODY_KINDS)
HOSTILE_KINDS = ("respond", "rewrite")
#: The random mix of :class:`FaultProxy` unless told otherwise: every transient
#: fault a client is expected to ride out. ``flip`` is left out (a corrupt blob
#: must fail the copy) and ``stall`` too (each one costs a client timeout).
TRANSIENT_KINDS = ("500", "502", "503", "429", "reset", "truncate")

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "transfer-encoding", "upgrade"})
_BLOB_PATH = r"/blobs/sha(256|512):"
_UPLOAD_SESSION = re.compile(r"/blobs/uploads/[^/]+$")


@dataclass
class ProxyRequest:
    """A request as the proxy received it (``path`` includes the query string)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def route(self) -> str:
        """The path without the query string."""
        return self.path.split("?", 1)[0]


@dataclass
class Reply:
    """An answer to send: status, headers, and bytes or an iterable of chunks."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""
    length: int | None = None  # for an iterable body: None = chunked encoding

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def with_header(self, name: str, value: str) -> "Reply":
        """A copy with header ``name`` replaced by ``value``."""
        kept = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        return Reply(self.status, [*kept, (name, value)], self.body, self.length)


@dataclass
class Rule:
    """A scripted fault (see the module docstring); the counters are the proxy's."""

    kind: str
    method: str | None = None
    path: str | None = None  # a regex searched in the path without query
    times: int | None = 1
    after: int = 0
    retry_after: str | None = None
    stall: float | None = None
    handler: Callable[..., Reply] | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, request: ProxyRequest) -> bool:
        """Whether this rule is about ``request`` (method and path), ignoring its counters."""
        if self.method is not None and request.method != self.method.upper():
            return False
        return self.path is None or re.search(self.path, request.route) is not None


@dataclass(frozen=True)
class Injection:
    """One fault the proxy injected."""

    kind: str
    method: str
    path: str
    source: str  # "random" or "script"
    at: float  # time.monotonic() when it was injected
    retry_after: str | None = None
    stall: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class ProxiedRequest:
    """One request through the proxy and what the client got."""

    method: str
    path: str
    status: int | None  # None when the client got no status line (reset, stall)
    fault: str | None
    at: float  # time.monotonic() when the proxy answered (or cut) it
    authorization: str | None = None  # the Authorization header the client sent, for leak checks


def _oci_error(status: int, code: str, message: str, extra: Sequence[tuple[str, str]] = ()) -> Reply:
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
    return Reply(status, [("Content-Type", "application/json"), *extra], body, len(body))


def docker_hub_rate_limit(remaining: int, limit: int = 100, window: int = 21600) -> Callable[..., Reply]:
    """A ``rewrite`` handler adding Docker Hub's ``RateLimit-Limit`` / ``RateLimit-Remaining``
    headers to every answer, ``remaining`` counting down one per request (as Docker Hub counts
    pulls) and never below 0. Distribution sends no such headers, so a test of the rate-limit stop
    puts this in front of a real registry: ``proxy.add("rewrite", times=None, handler=...)``."""
    left = [remaining]

    def limited(request: ProxyRequest, reply: Reply) -> Reply:
        left[0] -= 1
        return reply.with_header("RateLimit-Limit", f"{limit};w={window}").with_header(
            "RateLimit-Remaining", f"{max(left[0], 0)};w={window}")
    return limited


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 that injects faults (see the module docstring)."""

    def __init__(self, upstream: str, *, rate: float = 0.0, kinds: Sequence[str] = TRANSIENT_KINDS,
                 seed: int = 0, retry_after: str = "1", stall: float = 30.0, max_consecutive: int | None = 2,
                 flip_paths: str = _BLOB_PATH, body_paths: str | None = None,
                 upstream_timeout: float = 60.0) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {FAULT_KINDS}")
        parts = urlsplit(upstream if "://" in upstream else f"http://{upstream}")
        if parts.scheme != "http":
            raise ValueError("the fault proxy forwards to plain-HTTP registries only")
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rate = rate
        self.kinds = tuple(kinds)
        self.seed = seed
        self.retry_after = retry_after
        self.stall = stall
        self.max_consecutive = max_consecutive
        self.flip_paths = flip_paths
        self.body_paths = body_paths
        self.upstream_timeout = upstream_timeout
        self.rules: list[Rule] = []
        self.requests: list[ProxiedRequest] = []
        self.injected: list[Injection] = []
        self._occurrences: Counter[tuple[str, str]] = Counter()
        self._streak: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port = self._httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread: threading.Thread | None = None

    @classmethod
    def for_registry(cls, registry: Any, **kwargs: Any) -> "FaultProxy":
        """A proxy in front of a plain-HTTP rig registry (anything with ``.url``)."""
        return cls(registry.url, **kwargs)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> "FaultProxy":
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled connections are released at once."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------------
    def add(self, kind: str, *, method: str | None = None, path: str | None = None, times: int | None = 1,
            after: int = 0, retry_after: str | int | float | None = None, stall: float | None = None,
            handler: Callable[..., Reply] | None = None) -> Rule:
        """Script a fault (or a hostile ``respond`` / ``rewrite`` answer); see the module docstring."""
        if kind not in FAULT_KINDS and kind not in HOSTILE_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use {FAULT_KINDS + HOSTILE_KINDS}")
        if kind in HOSTILE_KINDS and handler is None:
            raise ValueError(f"{kind} needs a handler")
        rule = Rule(kind, method, path, times, after, None if retry_after is None else str(retry_after), stall,
                    handler)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self, *, rate: float | None = 0.0) -> None:
        """Drop every scripted rule and set the random rate (0 by default: a clean proxy)."""
        with self._lock:
            self.rules.clear()
            if rate is not None:
                self.rate = rate

    # -- records -------------------------------------------------------------------
    def counts(self) -> Counter[str]:
        """How many faults of each kind were injected."""
        with self._lock:
            return Counter(i.kind for i in self.injected)

    def mark(self) -> int:
        """A position in :attr:`injected`; pass it to :meth:`injected_since`."""
        with self._lock:
            return len(self.injected)

    def injected_since(self, mark: int = 0) -> list[Injection]:
        """Faults injected after ``mark``."""
        with self._lock:
            return list(self.injected[mark:])

    def wait_for(self, kind: str, count: int = 1, timeout: float = 60.0) -> bool:
        """Block until ``count`` faults of ``kind`` were injected; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(1 for i in self.injected if i.kind == kind) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    # -- decisions (called by the handler) -------------------------------------------
    def _decide(self, request: ProxyRequest) -> tuple[str | None, Rule | None]:
        """The fault for this request (kind, scripted rule or None), counting it."""
        # Upload sessions get a new random URL on every retry; one key for them all keeps
        # decisions reproducible and max_consecutive meaningful for "the upload of a blob".
        key = (request.method, _UPLOAD_SESSION.sub("/blobs/uploads/<session>", request.route))
        with self._lock:
            occurrence = self._occurrences[key]
            self._occurrences[key] += 1
            for rule in self.rules:
                if not rule.matches(request):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after or (rule.times is not None and rule.fired >= rule.times):
                    continue
                rule.fired += 1
                return rule.kind, rule
            if self.rate <= 0:
                return None, None
            if self.max_consecutive is not None and self._streak[key] >= self.max_consecutive:
                self._streak[key] = 0
                return None, None
            rng = random.Random(f"{self.seed}:{key[0]}:{key[1]}:{occurrence}")
            if rng.random() >= self.rate:
                self._streak[key] = 0
                return None, None
            candidates = [k for k in self.kinds if self._applies(k, request)]
            if not candidates:
                return None, None
            self._streak[key] += 1
            return rng.choice(candidates), None

    def _applies(self, kind: str, request: ProxyRequest) -> bool:
        if kind == "truncate":
            return request.method == "GET" and self.cuts_body(request)
        if kind == "flip":
            return request.method == "GET" and re.search(self.flip_paths, request.route) is not None
        return True

    def cuts_body(self, request: ProxyRequest) -> bool:
        """Whether a random fault on this GET may cut its body (``body_paths``; None = every GET)."""
        return self.body_paths is None or re.search(self.body_paths, request.route) is not None

    def _record(self, request: ProxyRequest, status: int | None, fault: str | None, rule: Rule | None,
                detail: str = "", retry_after: str | None = None, stall: float | None = None) -> None:
        with self._changed:
            self.requests.append(ProxiedRequest(request.method, request.path, status, fault, time.monotonic(),
                                                request.headers.get("Authorization")))
            if fault is not None and fault not in HOSTILE_KINDS:
                self.injected.append(Injection(fault, request.method, request.path,
                                               "script" if rule is not None else "random", time.monotonic(),
                                               retry_after, stall, detail))
            self._changed.notify_all()

    # -- upstream --------------------------------------------------------------------
    def forward(self, request: ProxyRequest) -> Reply:
        """Send ``request`` to the upstream registry and return its whole answer."""
        connection = http.client.HTTPConnection(*self.upstream, timeout=self.upstream_timeout)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers.pop("Content-Length", None)
            if request.body or request.method in ("PUT", "POST", "PATCH"):
                headers["Content-Length"] = str(len(request.body))
            connection.request(request.method, request.path, body=request.body or None, headers=headers)
            response = connection.getresponse()
            body = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            if request.method == "HEAD":
                return Reply(response.status, kept, b"", None)
            kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
            return Reply(response.status, kept, body, len(body))
        finally:
            connection.close()


def _flip(body: bytes) -> tuple[bytes, int]:
    position = len(body) // 2
    data = bytearray(body)
    data[position] ^= 0x55
    return bytes(data), position


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # recorded in proxy.requests instead

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass  # trailers
                        return bytes(data)
                    data += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _proxy(self) -> None:
            request = ProxyRequest(self.command, self.path, dict(self.headers.items()), b"")
            kind, rule = proxy._decide(request)
            mid_body = request.method == "GET" and (rule is not None or proxy.cuts_body(request))
            if kind == "stall" or (kind == "reset" and not mid_body):
                # Cut before reading or forwarding: the write never reaches the registry.
                return self._cut(request, kind, rule)
            try:
                request.body = self._read_body()
            except (OSError, ValueError):
                self.close_connection = True
                return
            if kind in STATUS_KINDS:
                return self._status_fault(request, kind, rule)
            if kind == "respond":
                assert rule is not None and rule.handler is not None
                return self._send(request, rule.handler(request), None, rule)
            try:
                reply = proxy.forward(request)
            except OSError as exc:
                # Not an injected fault: say so in the body, so a test failure points here.
                return self._send(request, _oci_error(502, "UNKNOWN", f"fault proxy: upstream failed: {exc}"),
                                  None, None)
            if kind == "rewrite":
                assert rule is not None and rule.handler is not None
                return self._send(request, rule.handler(request, reply), None, rule)
            body = reply.body if isinstance(reply.body, bytes) else b"".join(reply.body)
            if kind in ("truncate", "reset", "flip") and (request.method != "GET" or len(body) < 2):
                kind = "reset"  # nothing to cut or flip: a plain reset stands in
                if request.method != "GET" or not body:
                    return self._cut(request, kind, rule, detail="no body to cut")
            if kind == "flip":
                flipped, position = _flip(body)
                return self._send(request, Reply(reply.status, reply.headers, flipped, len(flipped)), kind, rule,
                                  detail=f"byte {position} of {len(body)}")
            if kind in ("truncate", "reset"):
                return self._partial(request, reply, body, kind, rule)
            return self._send(request, reply, None, None)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _proxy  # noqa: N815 - stdlib naming

        # -- answers -----------------------------------------------------------------
        def _status_fault(self, request: ProxyRequest, kind: str, rule: Rule | None) -> None:
            status = int(kind)
            if status == 429:
                retry_after = (rule.retry_after if rule is not None and rule.retry_after is not None
                               else proxy.retry_after)
                reply = _oci_error(429, "TOOMANYREQUESTS", "injected rate limit", [("Retry-After", retry_after)])
                return self._send(request, reply, kind, rule, retry_after=retry_after)
            code = "UNAVAILABLE" if status == 503 else "UNKNOWN"
            return self._send(request, _oci_error(status, code, f"injected {status}"), kind, rule)

        def _send(self, request: ProxyRequest, reply: Reply, fault: str | None, rule: Rule | None,
                  detail: str = "", retry_after: str | None = None) -> None:
            # Recorded before the answer goes out, so a client that has it finds it in the records.
            recorded = fault if fault is not None else (rule.kind if rule is not None else None)
            proxy._record(request, reply.status, recorded, rule, detail, retry_after)
            self.send_response(reply.status)
            chunked = not isinstance(reply.body, bytes) and reply.length is None
            for name, value in reply.headers:
                if name.lower() not in _HOP_BY_HOP and not (name.lower() == "content-length" and
                                                            request.method != "HEAD"):
                    self.send_header(name, value)
            if request.method != "HEAD":
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    length = reply.length if reply.length is not None else len(reply.body)  # type: ignore[arg-type]
                    self.send_header("Content-Length", str(length))
            self.end_headers()
            try:
                if request.method != "HEAD":
                    if isinstance(reply.body, bytes):
                        self.wfile.write(reply.body)
                    elif chunked:
                        for piece in reply.body:
                            if piece:
                                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        for piece in reply.body:
                            self.wfile.write(piece)
            except OSError:
                self.close_connection = True  # the client gave up (a cap, a timeout): nothing to do

        def _partial(self, request: ProxyRequest, reply: Reply, body: bytes, kind: str, rule: Rule | None) -> None:
            half = len(body) // 2
            proxy._record(request, reply.status, kind, rule, detail=f"after {half} of {len(body)} bytes")
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body[:half])
            except OSError:
                pass
            if kind == "reset":
                self._reset()
            else:
                self.close_connection = True

        def _cut(self, request: ProxyRequest, kind: str, rule: Rule | None, detail: str = "") -> None:
            if kind == "stall":
                seconds = rule.stall if rule is not None and rule.stall is not None else proxy.stall
                proxy._record(request, None, kind, rule, detail, stall=seconds)
                proxy._stopping.wait(seconds)
                self.close_connection = True
                return
            proxy._record(request, None, kind, rule, detail or "before the answer")
            self._reset()

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass

        def handle(self) -> None:
            try:
                super().handle()
            except OSError:
                self.close_connection = True  # the client went away (it timed out, or gave up on a cap)

        def finish(self) -> None:
            try:
                super().finish()
            except OSError:
                pass  # the socket was reset on purpose

    return Handler


@contextmanager
def proxy_pool() -> Iterator[Callable[..., FaultProxy]]:
    """``start(registry, **options)`` starts a :class:`FaultProxy` in front of ``registry``; all stop on exit.

    Test modules turn it into a fixture::

        @pytest.fixture
        def proxies():
            with proxy_pool() as start:
                yield start
    """
    started: list[FaultProxy] = []

    def start(registry: Any, **options: Any) -> FaultProxy:
        proxy = FaultProxy.for_registry(registry, **options).start()
        started.append(proxy)
        return proxy

    try:
        yield start
    finally:
        for proxy in started:
            proxy.stop()
