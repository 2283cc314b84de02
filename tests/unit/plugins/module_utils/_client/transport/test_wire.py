"""wire: a GET or HEAD on a kept-alive pooled connection, sent and read with http.client below urllib3's urlopen.

Why a raw socket server and not Distribution: these tests compare the exact bytes each sender writes, and
need a server that closes a kept-alive connection, cuts a body short, answers chunked or gzip-encoded, or
never answers, on cue. Distribution does none of these on demand. Many tests run the same exchange twice,
below urlopen and through it (``wire.SUPPORTED`` off), and compare what each gave.
"""
from __future__ import annotations

import gzip
import http.client
import io
import os
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
import requests
import trustme
import urllib3
import urllib3.connectionpool
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport import wire
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.body import read_whole
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import Transport, TransportOptions
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.session import (
    RegistrySession,
    _has_cookies,
    _merged_headers,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.wire import KeptAliveResponse
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import TransportError
# The autouse fixture that clears the proxy environment for every test here.
from tests.unit.plugins.module_utils._client.transport.test_session import (  # noqa: F401  # pylint: disable=unused-import
    clean_environment,
)

#: The tests that check the path itself; with urllib3 1.x (Debian 12's) the path is declined as a whole.
needs_wire = pytest.mark.skipif(not wire.SUPPORTED, reason="urllib3 other than 2.x: the path is declined")
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
#: What an answer does after it is written: keep the connection, close it, or go silent.
KEEP, CLOSE = "keep", "close"


class RawServer:
    """An HTTP/1.1 server on a socket: records each request's bytes and answers each from ``script``.

    ``script(index, request)`` gives the bytes to write (None: write nothing and wait for the client to go)
    and whether to close the connection afterwards. ``connections`` counts accepted connections.
    """

    def __init__(self, script: Callable[[int, bytes], tuple[bytes | None, str]]) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released each time the server closes a connection
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                request, _sep, buffer = buffer.partition(b"\r\n\r\n")
                self.requests.append(request + b"\r\n\r\n")
                answer, then = self.script(len(self.requests) - 1, request)
                if answer is None:
                    conn.recv(1)  # silent: until the client gives up and closes
                    return
                conn.sendall(answer)
                if then == CLOSE:
                    conn.close()
                    self.closed.release()
                    return

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(script: Callable[[int, bytes], tuple[bytes | None, str]]) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def session() -> RegistrySession:
    ours = RegistrySession()
    ours.headers["User-Agent"] = "ua"
    return ours


def send(ours: RegistrySession, method: str, url: str, *, whole: bool = True, timeout: tuple[float, float] = (5.0, 5.0),
         params: dict[str, object] | None = None) -> requests.Response:
    response = ours.send_direct(method, url, {"Accept": "application/json"}, params, None, timeout, True, None,
                                whole=whole)
    assert response is not None
    return response


@needs_wire
@pytest.mark.parametrize("method, params", [("GET", {"n": 20, "last": "v1.2"}), ("HEAD", None), ("GET", None)])
def test_a_kept_alive_request_is_the_same_bytes_as_requests_sends(serve: Callable[..., RawServer], method: str,
                                                                  params: dict[str, object] | None) -> None:
    server = serve(lambda _i, _r: (OK, KEEP))
    url = server.url("/v2/a/manifests/t")
    ours = session()
    first = send(ours, method, url, params=params)
    assert isinstance(first.raw, urllib3.HTTPResponse)  # a new connection: urllib3 opens it
    read_whole(first)
    second = send(ours, method, url, params=params)
    assert isinstance(second.raw, KeptAliveResponse)  # the kept-alive connection: below urlopen
    assert read_whole(second) == (b"" if method == "HEAD" else b"{}")
    theirs = requests.Session()
    theirs.trust_env = False
    theirs.headers["User-Agent"] = "ua"
    for _time in range(2):
        theirs.request(method, url, headers={"Accept": "application/json"}, params=params, stream=True,
                       allow_redirects=False, timeout=5).content
    assert server.requests[1] == server.requests[0] == server.requests[3] == server.requests[2]
    assert server.connections == 2  # one each, kept alive


@needs_wire
def test_the_response_reads_as_requests_and_urllib3s_do(serve: Callable[..., RawServer]) -> None:
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nWarning: 299 - \"a\"\r\n"
              b"warning: 299 - \"b\"\r\nSet-Cookie: lb=1; Path=/\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
    server = serve(lambda _i, _r: (answer, KEEP))
    ours = session()
    read_whole(send(ours, "GET", server.url("/v2/a/tags/list")))
    ours.cookies.clear()  # a kept cookie would send the next request through requests' full path
    ours_response = send(ours, "GET", server.url("/v2/a/tags/list"))
    assert isinstance(ours_response.raw, KeptAliveResponse)
    theirs = requests.Session()
    theirs.trust_env = False
    plain = theirs.get(server.url("/v2/a/tags/list"), stream=True, timeout=5)
    assert dict(ours_response.headers) == dict(plain.headers)
    assert ours_response.raw.headers.getlist("WARNING") == plain.raw.headers.getlist("WARNING")
    assert "set-cookie" in ours_response.raw.headers and "nope" not in ours_response.raw.headers
    assert (ours_response.status_code, ours_response.reason, ours_response.encoding, ours_response.raw.version) == \
        (plain.status_code, plain.reason, plain.encoding, plain.raw.version)
    assert ours_response.json() == plain.json() == {"a": 1}
    assert ours.cookies.get("lb") == "1"  # kept, as requests keeps it


def test_a_kept_alive_connection_the_server_closed_is_opened_again(serve: Callable[..., RawServer]) -> None:
    # The server closes each connection after its answer (without saying so): the pooled connection is dropped
    # when the next request comes, and that request goes out on a new one without an error.
    server = serve(lambda _i, _r: (OK, CLOSE))
    ours = session()
    url = server.url("/v2/a/manifests/t")
    for _time in range(3):
        assert read_whole(send(ours, "GET", url)) == b"{}"
        assert server.closed.acquire(timeout=5)  # closed by the server before the next request is sent
    assert len(server.requests) == 3 and server.connections == 3


def test_a_connection_lost_after_the_request_is_requests_connection_error(serve: Callable[..., RawServer]) -> None:
    # Closed after the request arrived, before any answer: as urllib3 raises it (requests' Retry(0, read=False)).
    server = serve(lambda i, _r: (b"", CLOSE) if i == 1 else (OK, KEEP))
    ours = session()
    read_whole(send(ours, "GET", server.url("/v2/a/manifests/t")))
    with pytest.raises(requests.exceptions.ConnectionError, match="Connection aborted"):
        send(ours, "GET", server.url("/v2/a/manifests/t"))
    # The slot went back to the pool: the next request opens a new connection.
    assert read_whole(send(ours, "GET", server.url("/v2/a/manifests/t"))) == b"{}"


def test_no_answer_on_a_kept_connection_is_requests_read_timeout(serve: Callable[..., RawServer]) -> None:
    server = serve(lambda i, _r: (OK, KEEP) if i == 0 else (None, KEEP))
    ours = session()
    read_whole(send(ours, "GET", server.url("/v2/a/manifests/t")))
    with pytest.raises(requests.exceptions.ReadTimeout, match="Read timed out"):
        send(ours, "GET", server.url("/v2/a/manifests/t"), timeout=(5.0, 0.2))


@needs_wire
@pytest.mark.parametrize("read", ["whole", "iter_content"])
def test_a_body_cut_short_is_requests_chunked_encoding_error(serve: Callable[..., RawServer], read: str) -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":"
    server = serve(lambda i, _r: (cut, CLOSE) if i == 1 else (OK, KEEP))
    ours = session()
    read_whole(send(ours, "GET", server.url("/v2/a/manifests/t")))
    response = send(ours, "GET", server.url("/v2/a/manifests/t"))
    assert isinstance(response.raw, KeptAliveResponse)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        if read == "whole":
            read_whole(response)
        else:
            b"".join(response.iter_content(8))
    assert read_whole(send(ours, "GET", server.url("/v2/a/manifests/t"))) == b"{}"  # a new connection


@needs_wire
@pytest.mark.parametrize("answer, body", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", b"{}"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
     % (len(gzip.compress(b"{}")), gzip.compress(b"{}")), b"{}"),
    (b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\n{}", b"{}"),
    # A line that is no header: http.client keeps it and what follows as unparsed data; urllib3 logs it.
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nno header here\r\nX-After: 1\r\n\r\n{}", b"{}"),
], ids=["chunked", "gzip", "folded", "unparsed"])
def test_an_answer_that_is_not_plain_is_urllib3s_response(serve: Callable[..., RawServer], answer: bytes,
                                                          body: bytes) -> None:
    server = serve(lambda i, _r: (OK if i == 0 else answer, KEEP))
    ours = session()
    read_whole(send(ours, "GET", server.url("/v2/a/manifests/t")))
    response = send(ours, "GET", server.url("/v2/a/manifests/t"))
    assert isinstance(response.raw, urllib3.HTTPResponse)  # built as urllib3's getresponse builds it
    assert response.content == body
    theirs = requests.Session()
    theirs.trust_env = False
    plain = theirs.get(server.url("/v2/a/manifests/t"), stream=True, timeout=5)
    assert dict(response.headers) == dict(plain.headers) and plain.content == body
    assert read_whole(send(ours, "GET", server.url("/v2/a/manifests/t"))) == b"{}"
    assert server.connections == 2  # ours kept its connection throughout


def test_a_stream_a_body_and_unsupported_urllib3_are_left_to_urlopen(serve: Callable[..., RawServer],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(lambda _i, _r: (OK, KEEP))
    ours = session()
    url = server.url("/v2/a/manifests/t")
    read_whole(send(ours, "GET", url))
    streamed = send(ours, "GET", url, whole=False)  # a caller that streams: urllib3's response
    assert isinstance(streamed.raw, urllib3.HTTPResponse)
    streamed.close()
    read_whole(send(ours, "GET", url))
    monkeypatch.setattr(wire, "SUPPORTED", False)  # as with urllib3 1.26
    assert isinstance(send(ours, "GET", url).raw, urllib3.HTTPResponse)


def test_only_urllib3_2_is_supported() -> None:
    # 1.x is declined; so is an early 2.x whose HTTPResponse lacks a parameter the path hands it (2.0 and 2.1
    # have no version_string); from 2.2 on, the path is taken (this file passes on 2.2.3, 2.3.0 (what Debian 13
    # ships) and 2.8.0; 2.2 differs only in HTTPResponse's missing sock_shutdown, which the path leaves out).
    major, minor = (int(part) for part in urllib3.__version__.split(".")[:2])
    if major != 2:
        assert wire.SUPPORTED is False
    elif minor >= 2:
        assert wire.SUPPORTED is True
    else:
        assert wire.SUPPORTED is False


@needs_wire
def test_a_closed_response_gives_back_a_closed_connection(serve: Callable[..., RawServer]) -> None:
    # Closing before the body is read closes the connection (its rest is unread); the next request opens one.
    server = serve(lambda _i, _r: (OK, KEEP))
    ours = session()
    url = server.url("/v2/a/manifests/t")
    read_whole(send(ours, "GET", url))
    unread = send(ours, "GET", url)
    assert isinstance(unread.raw, KeptAliveResponse)
    unread.close()
    assert read_whole(send(ours, "GET", url)) == b"{}"
    assert server.connections == 2


@pytest.mark.parametrize("head", [
    b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n",
    b"Warning: 299 - \"a\"\r\nwarning: 299 - \"b\"\r\nX-Latin: caf\xe9 \xff\r\n\r\n",
    b"X-Folded: a\r\n b\r\nX-Empty:\r\n\r\n",
])
def test_the_fields_read_are_the_fields_email_gives(head: bytes) -> None:
    message = http.client.parse_headers(io.BytesIO(head))
    assert wire._fields_of(message) == message.items()  # pylint: disable=protected-access


def test_a_session_header_merge_reads_the_session_store_as_items() -> None:
    ours = session()
    ours.headers["X-Mixed-Case"] = "1"
    assert _merged_headers({"accept": "a", "User-Agent": None}, ours.headers) == \
        _merged_headers({"accept": "a", "User-Agent": None}, dict(ours.headers.items()))
    assert not _has_cookies(ours.cookies)
    ours.cookies.set("lb", "1")
    assert _has_cookies(ours.cookies)
    ours.cookies.clear()
    assert not _has_cookies(ours.cookies)


def outcomes(serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch, answer: bytes, supported: bool,
             adapter: requests.adapters.HTTPAdapter | None = None, then: str = KEEP,
             method: str = "GET") -> tuple[list[object], tuple[int, ...]]:
    """Three GETs, the second (a ``method``) answered with ``answer``, with the wire path on or off: what each
    gave, and the connections the server accepted, the requests it read and the pool's request and connection
    counts. With the path on (and requests' own Retry), the second must go out below urlopen."""
    monkeypatch.setattr(wire, "SUPPORTED", supported)
    below = 0
    exchange = wire._exchange  # pylint: disable=protected-access

    def counted(*args: object) -> tuple[object, object]:
        nonlocal below
        below += 1
        return exchange(*args)

    monkeypatch.setattr(wire, "_exchange", counted)
    server = serve(lambda i, _r: (answer, then) if i == 1 else (OK, KEEP))
    ours = session()
    if adapter is not None:
        ours.mount("http://", adapter)
    seen: list[object] = []
    for index in range(3):
        try:
            response = send(ours, method if index == 1 else "GET", server.url("/v2/a/manifests/t"))
            seen.append((response.status_code, read_whole(response), dict(response.headers)))
        except requests.RequestException as exc:
            seen.append((type(exc).__name__, str(exc)))
    pool = next(iter(ours._pools.values()))  # pylint: disable=protected-access
    assert below >= 1 if supported and adapter is None else below == 0  # the second went out below urlopen
    return seen, (server.connections, len(server.requests), pool.num_requests, pool.num_connections)


@needs_wire
def test_differing_content_lengths_are_refused_as_urllib3_refuses_them(serve: Callable[..., RawServer],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # http.client takes the first Content-Length; urllib3 refuses differing ones (a response that cannot be
    # framed): the wire path must not read a body urllib3 would never hand over.
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"
    ours = outcomes(serve, monkeypatch, answer, True)
    assert ours == outcomes(serve, monkeypatch, answer, False)
    assert ours[0][1] == ("InvalidHeader", "Content-Length contained multiple unmatching values (2, 3)")
    same = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
    assert outcomes(serve, monkeypatch, same, True) == outcomes(serve, monkeypatch, same, False)


@needs_wire
def test_a_retry_on_status_is_left_to_urlopen(serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch) -> None:
    # An adapter whose Retry sends again on a 503 with Retry-After (requests' HTTPAdapter(max_retries=2) does):
    # urlopen retries it; the wire path, which has no status retry, leaves such a pool's requests to urlopen.
    answer = b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n"
    for retry in (urllib3.Retry(total=2, read=False), urllib3.Retry(total=2, status_forcelist=[503])):
        ours = outcomes(serve, monkeypatch, answer, True, requests.adapters.HTTPAdapter(max_retries=retry))
        assert ours == outcomes(serve, monkeypatch, answer, False, requests.adapters.HTTPAdapter(max_retries=retry))
        assert [entry[0] for entry in ours[0]] == [200, 200, 200]  # type: ignore[index]
        assert ours[1] == (1, 4, 4, 1)  # the 503 sent again on the same connection


@needs_wire
@pytest.mark.parametrize("headers", ["session-without-user-agent", "request-without-user-agent",
                                     "transfer-encoding"])
def test_headers_urllib3_adds_to_are_urllib3s(serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch,
                                              headers: str) -> None:
    # urllib3's request() adds its own User-Agent when the headers have none, and sends the last chunk of a
    # body declared chunked (a GET's empty one too); http.client alone does neither.
    sent: dict[bool, list[bytes]] = {}
    for supported in (True, False):
        monkeypatch.setattr(wire, "SUPPORTED", supported)
        # A last chunk reads as a head here: it gets no answer (b"": nothing written, the connection kept).
        server = serve(lambda _i, request: (OK if request.startswith(b"GET ") else b"", KEEP))
        ours = session()
        sending: dict[str, str | None] = {"Accept": "application/json"}
        if headers == "session-without-user-agent":
            del ours.headers["User-Agent"]
        elif headers == "request-without-user-agent":
            sending["user-agent"] = None  # requests' way to drop a session header for one request
        else:
            sending["transfer-encoding"] = "chunked"
        for _time in range(2):
            response = ours.send_direct("GET", server.url("/v2/a/manifests/t"), sending, None, None,  # type: ignore[arg-type]
                                        (5.0, 5.0), True, None, whole=True)
            assert response is not None and read_whole(response) == b"{}"
        expected = 4 if headers == "transfer-encoding" else 2
        for _wait in range(200):  # the last chunk may reach the server after the answer reached the client
            if len(server.requests) >= expected:
                break
            time.sleep(0.01)
        sent[supported] = [request.replace(b"%d" % server.port, b"PORT") for request in server.requests]
    assert sent[True] == sent[False]
    if headers == "transfer-encoding":
        assert sent[True][1::2] == [b"0\r\n\r\n"] * 2  # the last chunk after each
    else:
        assert all(b"\r\nUser-Agent: python-urllib3/" in request for request in sent[True])


@needs_wire
@pytest.mark.parametrize("answer, then, method", [
    (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK, KEEP, "GET"),  # http.client's final answer: the 103
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}EXTRA", KEEP, "GET"),  # the rest: the connection is dropped
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", CLOSE, "GET"),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", CLOSE, "GET"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", KEEP, "GET"),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", KEEP, "GET"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", KEEP, "HEAD"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}", CLOSE, "GET"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", KEEP, "GET"),
    (b"", CLOSE, "GET"),  # a stale connection: closed on the status line
    (b"XTTP/1.1 200 OK\r\n\r\n", CLOSE, "GET"),
], ids=["103", "longer-than-length", "http-1.0", "connection-close", "204", "304", "head", "negative-length",
        "chunked-and-length", "closed", "bad-status-line"])
def test_an_answer_gives_what_urlopen_gives(serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch,
                                            answer: bytes, then: str, method: str) -> None:
    # The same answers, exceptions, connections opened and pool counts as urllib3's own path.
    ours = outcomes(serve, monkeypatch, answer, True, then=then, method=method)
    assert ours == outcomes(serve, monkeypatch, answer, False, then=then, method=method)


@needs_wire
@pytest.mark.parametrize("retries", [0, 1])
def test_a_connection_closed_after_the_dropped_check_is_the_transports_retry(monkeypatch: pytest.MonkeyPatch,
                                                                             retries: int) -> None:
    # The server's close arrives between the pool's dropped-connection check and the write (forced here by
    # answering that check "open"): the write succeeds, the status line is missing. urllib3 with requests'
    # Retry(0, read=False) raises ProtocolError, requests' ConnectionError; the transport's retry policy sends
    # the GET again on a new connection, or says the registry cannot be reached. The same on both paths.
    monkeypatch.setattr(wire, "is_connection_dropped", lambda _conn: False)
    monkeypatch.setattr(urllib3.connectionpool, "is_connection_dropped", lambda _conn: False)
    seen = {}
    for supported in (True, False):
        monkeypatch.setattr(wire, "SUPPORTED", supported)
        server = RawServer(lambda i, _r: (OK, CLOSE if i == 0 else KEEP))
        try:
            transport = Transport(f"127.0.0.1:{server.port}",
                                  TransportOptions(plain_http=True, retries=retries, sleep=lambda _s: None))
            transport.request("GET", "/v2/a/manifests/t")
            assert server.closed.acquire(timeout=5)
            try:
                got: object = transport.request("GET", "/v2/a/manifests/t").content
            except TransportError as exc:
                got = str(exc).replace(str(server.port), "PORT")
            seen[supported] = (got, server.connections, len(server.requests))
        finally:
            server.close()
    assert seen[True] == seen[False]
    if retries:
        assert seen[True] == (b"{}", 2, 2)
    else:
        assert "cannot reach 127.0.0.1:PORT (('Connection aborted.', RemoteDisconnected(" in str(seen[True][0])


@needs_wire
def test_eight_threads_share_the_pool_as_with_urlopen(serve: Callable[..., RawServer],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {}
    for supported in (True, False):
        monkeypatch.setattr(wire, "SUPPORTED", supported)
        server = serve(lambda _i, _r: (OK, KEEP))
        ours = session()
        failures: list[BaseException] = []
        kept: list[bool] = []

        def work() -> None:
            try:
                for _time in range(50):
                    response = send(ours, "GET", server.url("/v2/a/manifests/t"))  # pylint: disable=cell-var-from-loop
                    kept.append(isinstance(response.raw, KeptAliveResponse))  # pylint: disable=cell-var-from-loop
                    assert read_whole(response) == b"{}"
            except BaseException as exc:  # pylint: disable=broad-except
                failures.append(exc)  # pylint: disable=cell-var-from-loop

        threads = [threading.Thread(target=work) for _thread in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        pool = next(iter(ours._pools.values()))  # pylint: disable=protected-access
        slots = list(pool.pool.queue)
        open_ = sum(1 for conn in slots if conn is not None and conn.sock is not None)
        # How many connections 8 threads open depends on their timing; each one opened is back in the pool, open.
        assert server.connections == pool.num_connections == open_ <= 8
        counts[supported] = (len(server.requests), pool.num_requests, len(slots))
        assert any(kept) is supported
    assert counts[True] == counts[False] == (400, 400, 10)  # every request counted, every slot back


class TlsServer(RawServer):
    """:class:`RawServer` behind TLS, with a certificate of a throwaway CA (nothing here trusts it)."""

    def __init__(self, script: Callable[[int, bytes], tuple[bytes | None, str]]) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        trustme.CA().issue_cert("127.0.0.1").configure_cert(self.context)
        super().__init__(script)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def _talk(self, conn: socket.socket) -> None:
        try:
            conn = self.context.wrap_socket(conn, server_side=True)
        except OSError:
            return
        super()._talk(conn)


@needs_wire
def test_an_unverified_https_request_warns_as_urllib3_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    # InsecureRequestWarning for every request on an unverified connection, kept-alive ones included, from
    # urllib3's own _validate_conn; raised as an error, it discards the connection as urlopen does.
    seen = {}
    for supported in (True, False):
        monkeypatch.setattr(wire, "SUPPORTED", supported)
        server = TlsServer(lambda _i, _r: (OK, KEEP))
        try:
            ours = session()
            kinds = []
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for _time in range(3):
                    response = ours.send_direct("GET", server.url("/v2/a/manifests/t"), {}, None, None, (5.0, 5.0),
                                                False, None, whole=True)
                    assert response is not None and read_whole(response) == b"{}"
                    kinds.append(type(response.raw).__name__)
            with warnings.catch_warnings():
                warnings.simplefilter("error", urllib3.exceptions.InsecureRequestWarning)
                with pytest.raises(urllib3.exceptions.InsecureRequestWarning):
                    ours.send_direct("GET", server.url("/v2/a/manifests/t"), {}, None, None, (5.0, 5.0), False, None,
                                     whole=True)
            pool = next(iter(ours._pools.values()))  # pylint: disable=protected-access
            seen[supported] = ([(w.category, w.filename, w.lineno) for w in caught], server.connections,
                               [conn is not None and conn.sock is not None for conn in pool.pool.queue])
            assert ("KeptAliveResponse" in kinds) is supported
        finally:
            server.close()
    assert seen[True] == seen[False]
    assert [entry[0] for entry in seen[True][0]] == [urllib3.exceptions.InsecureRequestWarning] * 3
    assert not any(seen[True][2])  # the connection the error interrupted was closed, its slot given back


@needs_wire
def test_a_closed_pool_is_closed_on_both_paths(serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch) -> None:
    # A pool closed under a response still being read: the connection is closed when the response gives it
    # back (urllib3's _put_conn), and the next request is refused as urlopen refuses it.
    seen = {}
    for supported in (True, False):
        monkeypatch.setattr(wire, "SUPPORTED", supported)
        server = serve(lambda _i, _r: (OK, KEEP))
        ours = session()
        read_whole(send(ours, "GET", server.url("/v2/a/manifests/t")))
        unread = send(ours, "GET", server.url("/v2/a/manifests/t"))
        assert isinstance(unread.raw, KeptAliveResponse) is supported
        pool = next(iter(ours._pools.values()))  # pylint: disable=protected-access
        connection = unread.raw._connection  # pylint: disable=protected-access
        pool.close()
        assert pool.pool is None
        body = read_whole(unread)
        with pytest.raises(requests.exceptions.ConnectionError) as refused:
            send(ours, "GET", server.url("/v2/a/manifests/t"))
        seen[supported] = (body, connection.sock is None, str(refused.value).replace(str(server.port), "PORT"),
                           server.connections, len(server.requests))
    assert seen[True] == seen[False] == (b"{}", True, "HTTPConnectionPool(host='127.0.0.1', port=PORT): Pool is closed.",
                                         1, 2)


class GarblingTlsServer(TlsServer):
    """Answers the first request on a connection, then writes a TLS record that fails the client's check."""

    def _talk(self, conn: socket.socket) -> None:
        try:
            conn = self.context.wrap_socket(conn, server_side=True)
        except OSError:
            return
        with conn:
            for index in range(2):
                if not conn.recv(65536):
                    return
                self.requests.append(b"")
                if index == 0:
                    conn.sendall(OK)
                else:  # past the TLS layer: an application-data record of noise
                    os.write(conn.fileno(), b"\x17\x03\x03\x00\x10" + b"\x00" * 16)


@needs_wire
def test_a_tls_failure_on_a_kept_connection_is_requests_ssl_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib3 wraps it (SSLError), its Retry gives up at once (MaxRetryError), requests says SSLError; the
    # connection is closed and its slot given back. The same on both paths.
    seen = {}
    below: list[object] = []
    exchange = wire._exchange  # pylint: disable=protected-access
    monkeypatch.setattr(wire, "_exchange", lambda *args: below.append(args) or exchange(*args))
    for supported in (True, False):
        monkeypatch.setattr(wire, "SUPPORTED", supported)
        server = GarblingTlsServer(lambda _i, _r: (OK, KEEP))
        try:
            ours = session()
            url = server.url("/v2/a/manifests/t")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                first = ours.send_direct("GET", url, {}, None, None, (5.0, 5.0), False, None, whole=True)
                assert first is not None and read_whole(first) == b"{}"
                with pytest.raises(requests.exceptions.SSLError) as failed:
                    ours.send_direct("GET", url, {}, None, None, (5.0, 5.0), False, None, whole=True)
            pool = next(iter(ours._pools.values()))  # pylint: disable=protected-access
            seen[supported] = (str(failed.value).replace(str(server.port), "PORT"), pool.pool.qsize(),
                               any(conn is not None and conn.sock is not None for conn in pool.pool.queue))
        finally:
            server.close()
    assert len(below) == 1  # the second request with the path on went out below urlopen
    assert seen[True] == seen[False]
    assert "Max retries exceeded" in seen[True][0] and seen[True][1:] == (10, False)


@needs_wire
def test_each_request_on_a_kept_connection_has_its_own_read_timeout(serve: Callable[..., RawServer],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The socket's timeout is set again for every request on the reused connection (urllib3's _make_request):
    # a short one before does not cut a slow answer with a longer one, and a short one now times out.
    plan = [((5.0, 5.0), 0.0), ((5.0, 0.2), 0.0), ((5.0, 3.0), 0.5), ((5.0, 0.2), 1.0)]
    seen = {}
    for supported in (True, False):
        monkeypatch.setattr(wire, "SUPPORTED", supported)
        server = serve(lambda i, _r: (time.sleep(plan[i][1] if i < len(plan) else 0) or OK, KEEP))
        ours = session()
        got: list[object] = []
        for timeout, _delay in plan:
            try:
                response = send(ours, "GET", server.url("/v2/a/manifests/t"), timeout=timeout)
                got.append((isinstance(response.raw, KeptAliveResponse), read_whole(response)))
            except requests.exceptions.ReadTimeout as exc:
                got.append(str(exc).replace(str(server.port), "PORT"))
        seen[supported] = got
    assert seen[True][:3] == [(False, b"{}"), (True, b"{}"), (True, b"{}")]
    assert seen[True][3] == seen[False][3] == \
        "HTTPConnectionPool(host='127.0.0.1', port=PORT): Read timed out. (read timeout=0.2)"
    assert [entry[1] for entry in seen[False][:3]] == [b"{}"] * 3  # type: ignore[index]
