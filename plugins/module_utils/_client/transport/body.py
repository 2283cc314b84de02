# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading response bodies with caps: documents, error bodies, and body-less answers.

Every body the transport reads itself goes through a cap, so a registry (or
something pretending to be one) can never make the client hold more than the
cap in memory: a document over its cap is :class:`TooLargeError` before or
while it is read; an error body is cut at its cap and read no further.
"""
from __future__ import annotations

from http.client import HTTPException
from typing import TYPE_CHECKING, Protocol

try:
    from requests.exceptions import ChunkedEncodingError, ContentDecodingError, RequestException
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import SSLError as RequestsSSLError
    from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
    from urllib3.exceptions import SSLError as Urllib3SSLError
    from urllib3.response import HTTPResponse as Urllib3Response
except ImportError:  # pragma: no cover - ansible-test sanity imports without requests
    ChunkedEncodingError = RequestException = RequestsConnectionError = OSError  # type: ignore[assignment,misc]
    Urllib3Response = None  # type: ignore[assignment,misc]
    Urllib3HTTPError = OSError  # type: ignore[assignment,misc]

from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.wire import KeptAliveResponse
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    TooLargeError,
    TransportError,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from collections.abc import Iterator

    from requests import Response

KiB = 1024


class BodyCut(TransportError):
    """A response body broke off after its headers (the request may be sent again).

    ``cause`` is the connection error, for the transport's message.
    """

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"the response body broke off: {type(cause).__name__}")
        self.cause = cause


class ChunkSource(Protocol):
    """The part of a response :func:`read_error_body` needs (static typing only)."""

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        """The body in chunks."""

    def close(self) -> None:
        """Release the connection."""


def read_document(response: Response, cap: int, what: str, host: str) -> bytes:
    """Read all of ``response``'s body, at most ``cap`` bytes, and keep it as ``response.content``.

    Raises :class:`TooLargeError` when the declared or the actual length is
    over ``cap`` and :class:`BodyCut` when the connection broke mid-body (the
    message says what and where). The response is closed either way.
    """
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > cap:
        response.close()
        raise TooLargeError(
            f"{what} on {host}: the response is {declared} bytes, over the {cap} byte limit; "
            "this is not a document a registry should send here",
            status=response.status_code,
        )
    if declared and declared.isdigit() and not response.headers.get("Content-Encoding") \
            and not response.headers.get("Transfer-Encoding"):
        # A declared length within the cap, neither compressed nor chunked: http.client reads exactly that
        # many bytes, so one read() holds no more than the cap.
        try:
            whole = read_whole(response)
        except (RequestsConnectionError, ChunkedEncodingError) as exc:
            response.close()
            raise BodyCut(exc) from None
        except BaseException:
            response.close()
            raise
        if whole is not None:
            response.close()
            if len(whole) > cap:  # never with http.client's reading; kept so the cap never rests on it alone
                raise TooLargeError(f"{what} on {host}: the response exceeds the {cap} byte limit; "
                                    "this is not a document a registry should send here", status=response.status_code)
            return whole
    body = bytearray()
    try:
        for chunk in response.iter_content(64 * KiB):
            body.extend(chunk)
            if len(body) > cap:
                raise TooLargeError(
                    f"{what} on {host}: the response exceeds the {cap} byte limit; "
                    "this is not a document a registry should send here",
                    status=response.status_code,
                )
    except (RequestsConnectionError, ChunkedEncodingError) as exc:
        raise BodyCut(exc) from None
    finally:
        response.close()
    # Hand the capped body to callers through the normal requests API.
    content = bytes(body)
    response._content = content
    setattr(response, "_content_consumed", True)  # noqa: B010 - absent from some versions of the type information
    return content


def read_error_body(response: ChunkSource, cap: int) -> bytes:
    """At most ``cap`` bytes of an error response's body (never raises); the response is closed."""
    body = bytearray()
    try:
        for chunk in response.iter_content(8 * KiB):
            body.extend(chunk)
            if len(body) >= cap:
                break
    except RequestException:
        pass
    finally:
        response.close()
    return bytes(body[:cap])


#: An unneeded answer body up to this declared length is read to its end rather than dropped with its connection:
#: reading a few KiB on loopback or a WAN costs less than the new TCP (and TLS) handshake a closed one needs.
DISCARD_READ = 64 * KiB


def discard(response: Response) -> None:
    """Let go of an answer nobody reads (a challenge answered, a retried error, a redirect), keeping its connection.

    A body-less answer (a HEAD's, 204, 304) or a declared body of at most
    :data:`DISCARD_READ` bytes, neither compressed nor chunked, is read to its
    end so the connection goes back to the pool; anything else, or a read that
    fails, closes the connection as ``response.close()`` does. Never raises.
    """
    headers = response.headers
    declared = headers.get("Content-Length") or ""
    method = response.request.method if response.request is not None else None
    small = method == "HEAD" or response.status_code in (204, 304) or (
        declared.isdigit() and int(declared) <= DISCARD_READ
        and not headers.get("Content-Encoding") and not headers.get("Transfer-Encoding"))
    try:
        if small:
            # urllib3 (and the wire path's response) give the connection back once the body is read to its end.
            response.raw.read(decode_content=False)
    except (Urllib3HTTPError, HTTPException, OSError):
        pass  # a failed read costs only the connection, which close() below drops
    finally:
        response.close()


def release_connection(response: Response) -> bytes:
    """Read a body-less answer (HEAD) so its connection goes back to the pool.

    Responses are streamed; one nobody reads keeps its connection, so every
    HEAD (resolve, blob_exists) would otherwise open a new one.
    """
    whole = read_whole(response)
    return response.content if whole is None else whole


def read_whole(response: Response) -> bytes | None:
    """``response.content`` from one ``read()`` of its urllib3 response, or None when requests' way must read it.

    Only for a body whose size is known to be small (a HEAD's, or a declared length checked against a cap):
    ``read()`` without a size holds the whole body at once. The same content, the same connection release and
    the same requests exceptions as ``response.content``, without its chunk generators. The raw response is
    urllib3's or a :class:`.wire.KeptAliveResponse` (which reads and raises as urllib3's does).
    """
    raw = response.raw
    if Urllib3Response is None or type(raw) not in (Urllib3Response, KeptAliveResponse) \
            or getattr(response, "_content", None) is not False or getattr(response, "_content_consumed", True):  # pylint: disable=unidiomatic-typecheck
        return None
    # requests' iter_content maps urllib3's errors thus (requests.models.Response.iter_content.generate).
    try:
        content = raw.read(decode_content=True) or b""
    except ProtocolError as exc:
        raise ChunkedEncodingError(exc) from exc
    except DecodeError as exc:
        raise ContentDecodingError(exc) from exc
    except ReadTimeoutError as exc:
        raise RequestsConnectionError(exc) from exc
    except Urllib3SSLError as exc:
        raise RequestsSSLError(exc) from exc
    response._content = content
    setattr(response, "_content_consumed", True)  # noqa: B010 - absent from some versions of the type information
    return content
