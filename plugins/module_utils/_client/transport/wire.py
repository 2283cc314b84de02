# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A GET or HEAD on a kept-alive connection of urllib3's pool, sent and read with http.client itself.

Below ``RegistrySession.send_direct`` a request otherwise goes through urllib3's
request loop (the pool's open-URL method), which profiles at 61 to 69 % of a hot request's CPU; about a third of
that is urllib3's own bookkeeping and its ``HTTPResponse`` / ``HTTPHeaderDict``
built for every answer. :func:`send_kept_alive` takes urllib3's connection out of
the pool's queue (the connection requests configured: TLS context, certificate
checks, client certificate, pool size), checks it is still open as urllib3's
``_get_conn`` does, writes the request with ``http.client.HTTPConnection.request``
(urllib3's connection subclasses it: the same request line and headers, through
urllib3's own ``putrequest`` / ``putheader``) and reads the status and headers
with ``http.client.HTTPConnection.getresponse``. The answer is a
:class:`KeptAliveResponse` when its body is a plain one of known length (no
``Transfer-Encoding``, no ``Content-Encoding``, headers http.client parsed
without defects): it reads, raises and gives the connection back as urllib3's
response would. Any other answer is wrapped in urllib3's ``HTTPResponse`` as
urllib3's ``getresponse`` wraps it.

It declines (answers None, nothing sent) whenever urllib3 must do the work: a
connection not yet open (or found closed by the server: urllib3 then opens a new
one, with its TLS set-up and errors), a proxy, a blocking pool, a urllib3 other
than 2.x (1.26's connection and pool differ), a pool or connection of another
class, a ``Retry`` that may send again on an answer's status (``status_forcelist``,
``Retry-After``: the request loop's work), headers without a User-Agent (urllib3 adds its
own) or with a Transfer-Encoding (urllib3 sends the last chunk). A failure after the request was written takes urllib3's own path: the
connection is discarded, the pool's ``Retry`` decides (with requests' defaults:
the same exception urllib3 raises), and a retry it allows is sent by that loop.
"""
from __future__ import annotations

import errno
import http.client
import inspect
import logging
import queue
import sys
from collections.abc import Iterator
from email.policy import compat32
from socket import timeout as SocketTimeout
from ssl import SSLError as BaseSSLError
from typing import Any

try:
    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import IncompleteRead, ProtocolError, ReadTimeoutError, SSLError
    from urllib3.response import HTTPResponse
    from urllib3.util.connection import is_connection_dropped
    from urllib3.util.response import assert_header_parsing
    from urllib3.util.retry import Retry
except ImportError:  # pragma: no cover - ansible-test sanity imports without requests
    urllib3 = None  # type: ignore[assignment]

_log = logging.getLogger("urllib3.connectionpool")
_conn_log = logging.getLogger("urllib3.connection")


def _supported() -> bool:
    """urllib3 2.x with the pool and connection internals this module relies on (1.26's differ: declined)."""
    if urllib3 is None or not urllib3.__version__.startswith("2."):
        return False
    needed = {HTTPConnectionPool: ("_get_conn", "_put_conn", "_validate_conn"),
              HTTPConnection: ("putrequest", "putheader", "is_closed", "_http_vsn_str")}
    if not all(hasattr(owner, name) for owner, names in needed.items() for name in names):
        return False
    accepted = inspect.signature(HTTPResponse.__init__).parameters
    return all(name in accepted for name in ("body", "headers", "status", "version", "version_string", "reason",
                                             "preload_content", "decode_content", "original_response", "pool",
                                             "connection", "retries", "enforce_content_length", "request_method",
                                             "request_url"))


SUPPORTED = _supported()
_POOLS = (HTTPConnectionPool, HTTPSConnectionPool) if SUPPORTED else ()
_CONNECTIONS = (HTTPConnection, HTTPSConnection) if SUPPORTED else ()
_SOCK_SHUTDOWN = SUPPORTED and "sock_shutdown" in inspect.signature(HTTPResponse.__init__).parameters
#: What ``index_fields`` holds for a field given once (stands in for a missing Content-Length).
_ONE_VALUE: tuple[str, list[str]] = ("", [""])
#: urllib3's own header normalisation (obsolete line folding), where its version has one.
_NORMALIZE = getattr(sys.modules.get("urllib3.connection"), "_normalize_header_values", None)


class Headers:
    """The answer's header fields as http.client parsed them, read the ways the transport and requests read them.

    What urllib3's ``HTTPHeaderDict`` answers for the calls made on a response's
    ``raw.headers``: ``getlist``, ``get``, ``in`` (names case-insensitive) and
    ``itermerged`` (repeated fields joined with ", ", in order of first appearance).
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, tuple[str, list[str]]]) -> None:
        # lower-cased name -> (the name as first seen, its values in order); see index_fields.
        self._fields = fields

    def getlist(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        field = self._fields.get(name.lower())
        return [] if field is None else list(field[1])

    def get(self, name: str, default: Any = None) -> Any:
        """The values of ``name`` joined with ", ", or ``default``."""
        field = self._fields.get(name.lower())
        return default if field is None else ", ".join(field[1])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return (key for key, _values in self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)

    def items(self) -> list[tuple[str, str]]:
        """Every (name, value) field, repeated names together."""
        return [(key, value) for key, values in self._fields.values() for value in values]

    def merged(self) -> dict[str, tuple[str, str]]:
        """Lower-cased name -> (name as first seen, values joined with ", "): the store of a case-insensitive dict."""
        return {low: (key, values[0] if len(values) == 1 else ", ".join(values))
                for low, (key, values) in self._fields.items()}

    def itermerged(self) -> Iterator[tuple[str, str]]:
        """(name, values joined with ", ") per name, the name as first seen."""
        return iter(self.merged().values())


def index_fields(items: list[tuple[str, str]]) -> dict[str, tuple[str, list[str]]] | None:
    """``items`` by lower-cased name, or None when a value holds an obsolete line fold (urllib3 rewrites those)."""
    fields: dict[str, tuple[str, list[str]]] = {}
    for key, value in items:
        if "\r\n" in value:
            return None
        low = key.lower()
        field = fields.get(low)
        if field is None:
            fields[low] = (key, [value])
        else:
            field[1].append(value)
    return fields


class KeptAliveResponse:
    """A plain body of known length on a pooled connection, read as urllib3's ``HTTPResponse`` reads it.

    The surface requests and the transport use: ``read`` / ``stream`` (urllib3's
    exception types: ``ProtocolError`` for a body cut short, ``ReadTimeoutError``,
    ``SSLError``), ``close`` / ``release_conn``, ``headers``, ``status``,
    ``version``, ``reason``, and ``_original_response`` (requests' cookie
    extraction reads it). Once the body is read to its end the connection goes
    back to the pool; a read that fails closes it, as urllib3 does.
    """

    def __init__(self, original: http.client.HTTPResponse, headers: Headers, pool: Any, connection: Any,
                 retries: Any) -> None:
        self._fp: http.client.HTTPResponse | None = original
        self._original_response = original
        self._pool = pool
        self._connection = connection
        self._bytes_read = 0
        self.headers = headers
        self.status = original.status
        self.version = original.version
        self.reason = original.reason
        self.retries = retries
        self.length_remaining = original.length
        self.decode_content = False
        self.chunked = False

    @property
    def closed(self) -> bool:
        """Whether the body can be read no further."""
        return self._fp is None or self._fp.isclosed()

    def isclosed(self) -> bool:
        """http.client's name for :attr:`closed`."""
        return self.closed

    def read(self, amt: int | None = None, decode_content: bool | None = None, cache_content: bool = False) -> bytes:
        """Up to ``amt`` bytes of the body (all of it without), as urllib3's ``read`` of an identity body."""
        del decode_content, cache_content  # an identity body: nothing to decode; nothing is cached
        fp = self._fp
        if fp is None or fp.isclosed():
            return b""
        clean = False
        try:
            try:
                data = fp.read() if amt is None else fp.read(amt)
                if amt and not data and self.length_remaining:
                    # urllib3 enforces the declared length on a streamed read (http.client only on a whole one).
                    raise IncompleteRead(self._bytes_read, self.length_remaining)
            except SocketTimeout as exc:
                raise ReadTimeoutError(self._pool, None, "Read timed out.") from exc
            except BaseSSLError as exc:
                raise SSLError(exc) from exc
            except (http.client.HTTPException, OSError) as exc:
                raise ProtocolError(f"Connection broken: {exc!r}", exc) from exc
            clean = True
        finally:
            if not clean:
                fp.close()
                if self._connection is not None:
                    self._connection.close()
            if fp.isclosed():
                self.release_conn()
        self._bytes_read += len(data)
        if self.length_remaining is not None:
            self.length_remaining -= len(data)
        return data

    def stream(self, amt: int | None = 2 ** 16, decode_content: bool | None = None) -> Iterator[bytes]:
        """The body in pieces of at most ``amt`` bytes, as urllib3's ``stream``."""
        while not self.closed:
            data = self.read(amt, decode_content)
            if data:
                yield data

    def release_conn(self) -> None:
        """Give the connection back to the pool (once)."""
        connection, self._connection = self._connection, None
        if connection is not None and self._pool is not None:
            self._pool._put_conn(connection)  # pylint: disable=protected-access

    def close(self) -> None:
        """Stop reading: the rest of the body is left unread, so the connection is closed (urllib3's ``close``)."""
        if self._fp is not None and not self._fp.isclosed():
            self._fp.close()
            if self._connection is not None:
                self._connection.close()
        self._fp = None

    def drain_conn(self) -> None:
        """Read and drop the rest of the body so the connection can be reused; errors close it."""
        try:
            while self.read(2 ** 16):
                pass
        except (ProtocolError, ReadTimeoutError, SSLError):
            pass


def send_kept_alive(pool: Any, method: str, target: str, headers: Any, timeout: tuple[float, float],
                    retries: Any) -> tuple[Any, Any]:
    """Send ``method target`` on a kept-alive connection of ``pool`` and read the answer's head.

    Returns ``(response, retries)``: the response (a :class:`KeptAliveResponse` or
    urllib3's ``HTTPResponse``), or None with nothing sent when urllib3 must send it
    (see the module docstring), or None with the ``Retry`` urllib3's ``increment``
    gave after a failure it allows to retry (then urllib3's request loop sends it with that
    object, as urllib3 would). A failure it does not allow is raised as urllib3
    raises it. ``target`` must be a path (and query) urllib3 would send unchanged.
    """
    if not SUPPORTED or type(pool) not in _POOLS or pool.proxy is not None or pool.proxy_headers \
            or pool.block or method not in ("GET", "HEAD") or type(retries) is not Retry \
            or retries.status_forcelist or (retries.total and retries.respect_retry_after_header):  # pylint: disable=unidiomatic-typecheck
        # The last two: a Retry that may send again on the answer's status (Retry.is_retry), which urlopen does;
        # a subclass may decide otherwise.
        return None, retries
    try:
        names = frozenset(map(str.lower, headers))  # urllib3's request() reads the names so
    except TypeError:  # a bytes name, which urllib3 decodes first
        return None, retries
    if "user-agent" not in names or "transfer-encoding" in names:
        # urllib3's request() adds its own User-Agent where none is given, and ends a body declared chunked
        # (none here) with its last chunk; http.client alone does neither.
        return None, retries
    slots = pool.pool
    if slots is None:  # closed: urlopen raises ClosedPoolError
        return None, retries
    try:
        conn = slots.get(block=False)
    except queue.Empty:
        return None, retries
    if conn is None or type(conn) not in _CONNECTIONS or conn.sock is None or conn.proxy is not None \
            or conn._tunnel_host is not None:  # pylint: disable=protected-access
        _give_back(pool, conn)  # urlopen takes it again and opens it
        return None, retries
    if is_connection_dropped(conn):
        # urllib3's _get_conn: a kept-alive connection the server has closed is reset, then opened anew by urlopen.
        _log.debug("Resetting dropped connection: %s", pool.host)
        conn.close()
        _give_back(pool, conn)
        return None, retries
    return _exchange(pool, conn, method, target, headers, timeout, retries)


def _give_back(pool: Any, conn: Any) -> None:
    """Put ``conn`` back in the pool's queue it was just taken from (nothing sent on it)."""
    try:
        pool.pool.put(conn, block=False)
    except (AttributeError, queue.Full):  # closed or filled meanwhile: urllib3's _put_conn handles both
        pool._put_conn(conn)  # pylint: disable=protected-access


def _exchange(pool: Any, conn: Any, method: str, target: str, headers: Any, timeout: tuple[float, float],
              retries: Any) -> tuple[Any, Any]:
    """urllib3's ``_make_request`` and request-loop error handling on an open connection, with http.client's I/O."""
    connect_timeout, read_timeout = timeout
    pool.num_requests += 1
    clean = False
    try:
        conn.timeout = connect_timeout
        pool._validate_conn(conn)  # pylint: disable=protected-access  # HTTPS: the unverified-request warning
        # urllib3's request() sends under the connect timeout, as here.
        conn.sock.settimeout(connect_timeout)
        try:
            http.client.HTTPConnection.request(conn, method, target, None, headers)
        except BrokenPipeError:
            pass  # the server may close after a valid answer, which is still readable (urllib3's rule)
        except OSError as exc:
            if exc.errno not in (errno.EPROTOTYPE, errno.ECONNRESET):
                raise
        if not conn.is_closed:
            conn.timeout = read_timeout
        sock = conn.sock
        shutdown = getattr(sock, "shutdown", None)
        try:
            if sock is not None:
                sock.settimeout(conn.timeout)
            original = http.client.HTTPConnection.getresponse(conn)
        except (BaseSSLError, OSError) as exc:
            if isinstance(exc, SocketTimeout) or getattr(exc, "errno", None) in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise ReadTimeoutError(pool, target, f"Read timed out. (read timeout={read_timeout})") from exc
            raise
        response = _response(pool, conn, original, method, target, retries, shutdown)
        clean = True
    except (http.client.HTTPException, OSError, ProtocolError, BaseSSLError, SSLError, ReadTimeoutError) as exc:
        failure: Exception = exc
        if isinstance(exc, BaseSSLError):
            failure = SSLError(exc)
        elif isinstance(exc, (OSError, http.client.HTTPException)):
            failure = ProtocolError("Connection aborted.", exc)
        conn.close()
        pool._put_conn(None)  # pylint: disable=protected-access  # the slot, as urlopen puts it back
        clean = True
        # Raises what urllib3 raises when no retry is left (requests' default Retry(0, read=False): at once).
        retries = retries.increment(method, target, error=failure, _pool=pool, _stacktrace=sys.exc_info()[2])
        retries.sleep()
        _log.warning("Retrying (%r) after connection broken by '%r': %s", retries, exc, target)
        return None, retries
    finally:
        if not clean:  # anything else (a warning raised as an error, an interrupt): urlopen's clean-up
            conn.close()
            pool._put_conn(None)  # pylint: disable=protected-access
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug('%s://%s:%s "%s %s %s" %s %s', pool.scheme, pool.host, pool.port, method, target,
                   conn._http_vsn_str, response.status, response.length_remaining)  # pylint: disable=protected-access
    return response, retries


def _fields_of(msg: Any) -> list[tuple[str, str]]:
    """``msg.items()`` of a head http.client parsed, without the policy's per-field pass where it changes nothing.

    http.client decodes the head as ISO-8859-1, so no value holds a surrogate, and the compat32 policy's
    ``header_fetch_parse`` then hands every stored (name, value) back unchanged: the stored list is the answer.
    """
    stored = getattr(msg, "_headers", None)
    if type(stored) is not list or getattr(msg, "policy", None) is not compat32:  # pylint: disable=unidiomatic-typecheck
        stored = msg.items()
    return list(stored)


def _response(pool: Any, conn: Any, original: http.client.HTTPResponse, method: str, target: str, retries: Any,
              shutdown: Any) -> Any:
    """The response object for ``original``: light for a plain body of known length, else urllib3's own."""
    msg = original.msg
    items = _fields_of(msg)
    # Text after the header block (unparsed data, as urllib3's assert_header_parsing calls it); the attribute
    # email.message keeps it in, read without get_payload's header lookups (anything else: urllib3's way).
    unparsed = getattr(msg, "_payload", True)
    if not original.chunked and original.length is not None and not msg.defects and not unparsed:
        fields = index_fields(items)
        # Content-Length more than once: urllib3 refuses differing values (InvalidHeader) where http.client
        # takes the first one, so its HTTPResponse decides.
        if fields is not None and "transfer-encoding" not in fields and "content-encoding" not in fields \
                and len(fields.get("content-length", _ONE_VALUE)[1]) == 1:
            return KeptAliveResponse(original, Headers(fields), pool, conn, retries)
    # What urllib3's HTTPConnection.getresponse builds, and _make_request completes, for any other answer.
    try:
        assert_header_parsing(msg)
    except Exception as exc:  # pylint: disable=broad-except  # urllib3 logs and goes on, as here
        _conn_log.warning("Failed to parse headers (url=%s://%s:%s%s): %s", pool.scheme, pool.host, pool.port,
                          target, exc, exc_info=True)
    header_items = _NORMALIZE(msg) if _NORMALIZE is not None else items
    extra = {"sock_shutdown": shutdown} if _SOCK_SHUTDOWN else {}
    response = HTTPResponse(
        body=original, headers=urllib3.HTTPHeaderDict(header_items), status=original.status,
        version=original.version, version_string=conn._http_vsn_str,  # pylint: disable=protected-access
        reason=original.reason, preload_content=False, decode_content=False, original_response=original,
        enforce_content_length=True, request_method=method, request_url=target, retries=retries,
        pool=pool, connection=conn, **extra)
    return response
