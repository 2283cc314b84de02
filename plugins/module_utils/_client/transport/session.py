# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pooled HTTP session of one registry, with the environment read once, not per request.

A plain ``requests.Session`` reads the environment on every request: the
proxy variables twice (``getproxies_environment`` via ``get_environ_proxies``
and ``proxy_bypass``), and ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``.
Profiling 500 manifest reads put that among the client's top CPU costs, next
to the runtime ``Protocol`` isinstance checks requests' ``merge_setting``
does for every dict it merges (``to_key_val_list``).

:class:`RegistrySession` keeps requests' rules and answers, but resolves the
environment once per session (``HTTP(S)_PROXY`` / ``ALL_PROXY`` /
``NO_PROXY`` and the CA bundle variables at creation; the proxy-or-bypass
answer once per target host and port) and merges plain dicts without those checks. Its
``trust_env`` is False so requests itself never reads the environment again;
the snapshot taken at creation stands in for it.

:meth:`RegistrySession.send_direct` is the hot path of the registry's own
requests (manifest HEAD/GET, tag pages, blob probes): it prepares the request
with requests' own ``PreparedRequest`` steps and sends it on the urllib3
connection pool of the mounted ``HTTPAdapter`` (the same pools, TLS settings
and exception types requests uses), without what a plain session adds per
request and this client never needs: the cookie-jar merge and copy, hook
dispatch, redirect resolution, and the pool-key and URL parsing repeated for
every request. Whenever one of those could matter (a proxy for the target, a
cookie kept from an earlier answer, hooks, a streamed or form body, another
adapter) it answers None and the caller sends through ``request`` as before.
Below it, a GET or HEAD read whole at once on a connection the pool holds open
goes out through :mod:`.wire` (http.client on urllib3's own connection) instead
of urllib3's request loop (the pool's open-URL method).
"""
from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlencode, urlsplit
from urllib.request import getproxies

try:
    from requests import Session as _Session
    from requests.adapters import HTTPAdapter
    from requests.cookies import RequestsCookieJar, cookiejar_from_dict, extract_cookies_to_jar, merge_cookies
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ConnectTimeout, InvalidHeader, InvalidURL, ProxyError, ReadTimeout, RetryError, SSLError
    from requests.models import PreparedRequest, Response
    from requests.structures import CaseInsensitiveDict
    from requests.utils import check_header_validity, get_encoding_from_headers, should_bypass_proxies
    from urllib3.exceptions import ClosedPoolError, ConnectTimeoutError, HTTPError, LocationValueError, MaxRetryError
    from urllib3.exceptions import NewConnectionError
    from urllib3.exceptions import InvalidHeader as Urllib3InvalidHeader
    from urllib3.exceptions import ProtocolError, ReadTimeoutError, ResponseError
    from urllib3.exceptions import ProxyError as Urllib3ProxyError
    from urllib3.exceptions import SSLError as Urllib3SSLError
    from urllib3.util import Timeout
except ImportError:  # pragma: no cover - ansible-test sanity imports without requests
    _Session = HTTPAdapter = object  # type: ignore[assignment,misc]
    cookiejar_from_dict = merge_cookies = extract_cookies_to_jar = None  # type: ignore[assignment]

from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.wire import Headers, send_kept_alive


def keep_headers(request: Any) -> Any:
    """The session's ``auth``: hands the request back, so requests never applies ~/.netrc over our header."""
    return request


def _merge(request_setting: Any, session_setting: Any, dict_class: type = OrderedDict) -> Any:
    """requests' ``merge_setting`` for the settings a session merges, without its runtime Protocol check.

    Same answers: a missing side yields the other; two mappings merge with
    the request's keys winning and None values removed; otherwise the
    request's setting wins.
    """
    if session_setting is None:
        return request_setting
    if request_setting is None:
        return session_setting
    if not (isinstance(session_setting, Mapping) and isinstance(request_setting, Mapping)):
        return request_setting
    merged = dict_class(session_setting.items())
    merged.update(request_setting.items())
    for key in [k for k, v in merged.items() if v is None]:
        del merged[key]
    return merged


class RegistrySession(_Session):
    """A ``requests.Session`` that reads the proxy and CA-bundle environment once, at creation.

    The answers are requests' own: the proxies of ``getproxies()`` unless
    ``should_bypass_proxies`` says NO_PROXY covers the target (CIDRs, ports,
    domain suffixes), computed once per target ``(host, port)`` from the
    NO_PROXY value of the snapshot; ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
    replace ``verify=True`` as requests does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._env_proxies: dict[str, str] = dict(getproxies())
        # requests' own lookup order for NO_PROXY; "" (not None) so requests never reads it again.
        self._no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._proxy_cache: dict[tuple[str, int | None], dict[str, str]] = {}
        self._proxy_lock = threading.Lock()
        self._pools: dict[tuple[Any, ...], Any] = {}
        # Per origin ("scheme://host:port"): its scheme and netloc when requests' URL preparation leaves it as
        # it is (then a safe path after it is left as it is too), else None; see _fast_url.
        self._origins: dict[str, tuple[str, str] | None] = {}
        self._timeouts: dict[tuple[float, float], Timeout] = {}
        # Header (name, value) pairs requests' validity check has passed (a bounded set, cleared when full).
        self._valid_headers: set[tuple[str, str]] = set()
        self.trust_env = False

    def environ_proxies(self, url: str) -> dict[str, str]:
        """The proxies the environment (as read at creation) gives for ``url``; empty when bypassed."""
        parts = urlsplit(url)
        key = ((parts.hostname or "").lower(), parts.port)
        cached = self._proxy_cache.get(key)
        if cached is None:
            with self._proxy_lock:
                cached = self._proxy_cache.get(key)
                if cached is None:
                    bypass = should_bypass_proxies(url, no_proxy=self._no_proxy)
                    cached = {} if bypass else dict(self._env_proxies)
                    self._proxy_cache[key] = cached
        return cached

    # Parameters typed loosely on purpose: requests' inline types and the
    # types-requests stubs describe this method differently.
    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """requests' environment merge (with ``trust_env``), from the snapshot instead of ``os.environ``."""
        if proxies is not None:
            for key, value in self.environ_proxies(url).items():
                proxies.setdefault(key, value)
        if (verify is True or verify is None) and self._ca_bundle:
            verify = self._ca_bundle
        return {
            "proxies": _merge(proxies, self.proxies),
            "stream": _merge(stream, self.stream),
            "verify": _merge(verify, self.verify),
            "cert": _merge(cert, self.cert),
        }

    def send_direct(self, method: str, url: str, headers: Mapping[str, str], params: Mapping[str, Any] | None,
                    data: Any, timeout: tuple[float, float], verify: bool | str, cert: Any,
                    whole: bool = False) -> Response | None:
        """Send one request on the adapter's pool, as ``request(..., stream=True, allow_redirects=False)`` would.

        Same request on the wire (URL, headers, body, TLS settings, pool) and the same response and exception
        types; None when this session's state needs requests' full path (see the module docstring). ``whole``
        says the caller reads the whole body at once (a HEAD, a capped document): then a GET or HEAD on a
        kept-alive connection is sent and read with http.client below urllib3's request loop (:mod:`.wire`).
        """
        if not (data is None or isinstance(data, bytes)) or self.proxies or self.params or self.hooks["response"] \
                or self.auth not in (None, keep_headers) or _has_cookies(self.cookies) \
                or (self._env_proxies and self.environ_proxies(url)):
            return None
        adapter: Any = self.get_adapter(url)
        # Exactly requests' adapter: a subclass (a test's, a user's) may send its own way.
        if type(adapter) is not HTTPAdapter:  # pylint: disable=unidiomatic-typecheck
            return None
        if (verify is True or verify is None) and self._ca_bundle:
            verify = self._ca_bundle
        query: Any = _query(params) if isinstance(params, dict) else params
        prepared = PreparedRequest()
        fast = self._fast_url(url, query) if params is None or isinstance(params, dict) else None
        if fast is None:
            prepared.prepare_method(method)
            prepared.prepare_url(url, query)
            full_url = prepared.url or url
            path_url = prepared.path_url
            scheme, netloc = full_url.partition("://")[0], urlsplit(full_url).netloc
        else:
            # What prepare_method and prepare_url give for this URL (see _fast_url), without their parsing.
            prepared.method = method.upper()
            full_url, scheme, netloc, path_url = fast
            prepared.url = full_url
        plain_headers = _merged_headers(headers, self.headers)
        self._prepare_headers(prepared, plain_headers)
        if data is not None or prepared.method not in ("GET", "HEAD"):
            prepared.prepare_body(data, None, None)
        # else: what prepare_body(None, None, None) gives a GET or HEAD: no body, no Content-Length.
        # prepare_hooks({}) adds nothing to the default hooks PreparedRequest() starts with.
        key = (scheme, netloc, verify, cert)
        pool: Any = self._pools.get(key)
        if pool is None or pool.pool is None:  # none yet, or closed when the pool manager evicted it
            # Outside the send's exception mapping, as in HTTPAdapter.send: a bad CA path stays an OSError.
            try:
                pool = adapter.get_connection_with_tls_context(prepared, verify, proxies={}, cert=cert)
            except LocationValueError as err:
                raise InvalidURL(err, request=prepared) from err
            pool_adapter: Any = adapter  # cert_verify is untyped in some versions of the type information
            pool_adapter.cert_verify(pool, full_url, verify, cert)
            self._pools[key] = pool
        pool_timeout = self._timeouts.get(timeout)
        if pool_timeout is None:
            # urllib3 clones a Timeout for each request, so one per value serves them all.
            pool_timeout = self._timeouts.setdefault(timeout, Timeout(connect=timeout[0], read=timeout[1]))
        retries = adapter.max_retries
        try:
            raw = None
            if whole and fast is not None and prepared.body is None:
                # A path urllib3 sends unchanged (see _fast_url); None when urllib3 must send it (see .wire).
                # The headers as the plain dict prepared.headers was built from (same names, values and order).
                raw, retries = send_kept_alive(pool, method.upper(), path_url, plain_headers, timeout, retries)
            if raw is None:
                # The pool's request() hands everything below to its urlopen unchanged (headers copied once):
                # the same call requests' adapter makes, without the adapter's per-request set-up.
                raw = pool.request(
                    prepared.method, path_url, body=prepared.body, headers=prepared.headers,
                    redirect=False, assert_same_host=False, preload_content=False, decode_content=False,
                    retries=retries, timeout=pool_timeout, chunked=False)
        except (ProtocolError, OSError) as err:
            raise RequestsConnectionError(err, request=prepared) from err
        except HTTPError as err:
            if isinstance(err, ClosedPoolError):
                self._pools.pop(key, None)
            mapped = _requests_error(err, prepared)
            if mapped is err:
                raise
            raise mapped from err
        response = Response()
        response.status_code = raw.status
        store = getattr(response.headers, "_store", None)
        if type(raw.headers) is Headers and type(store) is OrderedDict:  # pylint: disable=unidiomatic-typecheck
            # The store CaseInsensitiveDict(raw.headers) would hold, built in one pass (see wire.Headers.merged).
            store.update(raw.headers.merged())
        else:
            # What CaseInsensitiveDict(raw.headers) holds (repeated fields joined with ", "), without a lookup per name.
            response.headers = CaseInsensitiveDict(raw.headers.itermerged())
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.reason = raw.reason
        response.url = full_url
        response.request = prepared
        response.connection = adapter
        if "Set-Cookie" in raw.headers or "Set-Cookie2" in raw.headers:
            # What requests keeps (the response's and the session's jar); the next request then takes its path.
            _extract_cookies(response.cookies, prepared, raw)
            _extract_cookies(self.cookies, prepared, raw)
        return response

    def _fast_url(self, url: str, query: str | None) -> tuple[str, str, str, str] | None:
        """The full URL, scheme, netloc and path (with query) requests' ``prepare_url`` gives, or None to ask it.

        Answered without parsing only for an origin ``prepare_url`` leaves unchanged (checked once per origin)
        followed by a path of characters neither requote_uri nor urllib3's normalisation touch (no percent
        escapes, no dot segments, no query or fragment) and a query from :func:`_query` (which those leave
        unchanged too); anything else goes through ``prepare_url``.
        """
        scheme, _sep, rest = url.partition("://")
        cut = rest.find("/")
        if scheme not in ("http", "https") or cut <= 0:
            return None
        origin, path = url[:len(scheme) + 3 + cut], rest[cut:]
        if not _SAFE_PATH.match(path) or "/." in path:
            return None
        if origin not in self._origins:
            self._origins[origin] = _plain_origin(origin)
        known = self._origins[origin]
        if known is None:
            return None
        if query:
            path = f"{path}?{query}"
            url = f"{url}?{query}"
        return url, known[0], known[1], path

    def _prepare_headers(self, prepared: PreparedRequest, headers: Mapping[str, Any]) -> None:
        """``prepared.prepare_headers(headers)``, checking each (name, value) pair once per session, not per send."""
        valid = self._valid_headers
        merged: CaseInsensitiveDict[Any] = CaseInsensitiveDict()
        for name, value in headers.items():
            if (name, value) not in valid:
                check_header_validity((name, value))
                if isinstance(name, str) and isinstance(value, str):
                    if len(valid) >= _VALID_HEADERS_KEPT:
                        valid.clear()
                    valid.add((name, value))
            merged[name] = value
        prepared.headers = merged

    def prepare_request(self, request: Any) -> PreparedRequest:
        """requests' ``prepare_request`` with the dict merges done by :func:`_merge` (same result)."""
        cookies = request.cookies or {}
        if not isinstance(cookies, CookieJar):
            cookies = _cookiejar_from_dict(cookies)
        merged_cookies = _merge_cookies(_merge_cookies(RequestsCookieJar(), self.cookies), cookies)
        prepared = PreparedRequest()
        prepared.prepare(
            method=request.method.upper(),
            url=request.url,
            files=request.files,
            data=request.data,
            json=request.json,
            headers=_merge(request.headers, self.headers, dict_class=CaseInsensitiveDict),
            # No parameters as None, not {}: the same URL without requests' runtime Protocol check.
            params=_merge(request.params, self.params) or None,
            auth=_merge(request.auth, self.auth),
            cookies=merged_cookies,
            hooks=_merge_hooks(request.hooks, self.hooks),
        )
        return prepared


#: Path characters that requests' requote_uri and urllib3's parse_url leave as they are: RFC 3986's unreserved
#: characters, sub-delimiters, ":", "@" and "/" (no "%", "?", "#" or anything outside ASCII).
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@/-]*\Z")
#: At most this many validated header pairs are kept (the Authorization value changes with each token).
_VALID_HEADERS_KEPT = 256


def _plain_origin(origin: str) -> tuple[str, str] | None:
    """``(scheme, netloc)`` when requests' ``prepare_url`` leaves ``origin + "/"`` exactly as it is, else None."""
    if "@" in origin:  # credentials in the URL: requests' full preparation handles them
        return None
    probe = PreparedRequest()
    try:
        probe.prepare_url(origin + "/", None)
    except (InvalidURL, ValueError):
        return None
    if probe.url != origin + "/":
        return None
    scheme, _sep, netloc = origin.partition("://")
    return scheme, netloc


# Typed handles: some versions of the requests type information leave these untyped.
_cookiejar_from_dict: Callable[..., Any] = cookiejar_from_dict
_merge_cookies: Callable[..., Any] = merge_cookies
_extract_cookies: Callable[..., Any] = extract_cookies_to_jar


def _has_cookies(jar: Any) -> bool:
    """``len(jar) > 0``, answered from the jar's domain map when that is empty (``len`` walks the jar under its lock)."""
    domains = getattr(jar, "_cookies", None)
    if type(domains) is dict and not domains:  # pylint: disable=unidiomatic-typecheck
        return False
    return len(jar) > 0


def _merged_headers(request_headers: Mapping[str, Any], session_headers: Mapping[str, Any]) -> dict[str, Any]:
    """The headers requests' merge gives (case-insensitive, the request's win in the session's place, None
    drops), as a plain dict for ``prepare_headers``: one pass instead of two ``CaseInsensitiveDict`` copies."""
    kept = getattr(session_headers, "_store", None)
    if type(session_headers) is CaseInsensitiveDict and type(kept) is OrderedDict:  # pylint: disable=unidiomatic-typecheck
        # A session's CaseInsensitiveDict keeps lower-cased name -> (name, value): its items without a lookup each.
        store = dict(kept)
    else:
        store = {key.lower(): (key, value) for key, value in session_headers.items()}
    for key, value in request_headers.items():
        store[key.lower()] = (key, value)
    return {key: value for key, value in store.values() if value is not None}


def _query(params: dict[Any, Any]) -> str:
    """requests' ``_encode_params`` of a dict (same string), without the runtime Protocol check it does first."""
    pairs = []
    for key, values in params.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        for value in values:
            if value is not None:
                pairs.append((key.encode("utf-8") if isinstance(key, str) else key,
                              value.encode("utf-8") if isinstance(value, str) else value))
    return urlencode(pairs, doseq=True)


def _requests_error(err: Exception, request: PreparedRequest) -> Exception:
    """The requests exception ``HTTPAdapter.send`` raises for a urllib3 one (same mapping, same order)."""
    if isinstance(err, MaxRetryError):
        reason = err.reason
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return ConnectTimeout(err, request=request)
        for urllib3_type, requests_type in ((ResponseError, RetryError), (Urllib3ProxyError, ProxyError),
                                            (Urllib3SSLError, SSLError)):
            if isinstance(reason, urllib3_type):
                return requests_type(err, request=request)
        return RequestsConnectionError(err, request=request)
    if isinstance(err, ClosedPoolError):
        return RequestsConnectionError(err, request=request)
    if isinstance(err, Urllib3ProxyError):
        return ProxyError(err)
    if isinstance(err, Urllib3SSLError):
        return SSLError(err, request=request)
    if isinstance(err, ReadTimeoutError):
        return ReadTimeout(err, request=request)
    if isinstance(err, Urllib3InvalidHeader):
        return InvalidHeader(err, request=request)
    return err


def _merge_hooks(request_hooks: Any, session_hooks: Any) -> Any:
    # requests' merge_hooks: a session without response hooks adds nothing.
    if session_hooks is None or session_hooks.get("response") == []:
        return request_hooks
    if request_hooks is None or request_hooks.get("response") == []:
        return session_hooks
    return _merge(request_hooks, session_hooks)
