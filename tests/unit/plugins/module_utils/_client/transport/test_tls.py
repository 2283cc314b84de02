"""The TLS-fallback step alone: which scheme, and when a loopback registry may drop to plain http."""
from __future__ import annotations

import ssl

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.tls import (
    SchemeFallback,
    origin_of,
    reason_of,
    tls_error,
)

NOT_TLS = ssl.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
BAD_CERT = ssl.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate")
CLIENT_CERT = ssl.SSLError("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")


def test_origin_fills_in_default_ports() -> None:
    assert origin_of("https://R.example/v2/") == ("https", "r.example", 443)
    assert origin_of("http://r.example:5000/x?y") == ("http", "r.example", 5000)


@pytest.mark.parametrize(("plain_http", "scheme"), [(True, "http"), (False, "https"), (None, "https")])
def test_start_scheme_follows_plain_http(plain_http: bool | None, scheme: str) -> None:
    assert SchemeFallback("127.0.0.1:5000", plain_http).scheme == scheme


def test_loopback_without_tls_downgrades_once_and_rewrites_its_own_origin_only() -> None:
    fallback = SchemeFallback("127.0.0.1:5000", None)
    assert fallback.downgrade_after(NOT_TLS, "https://127.0.0.1:5000/v2/")
    assert fallback.scheme == "http"
    assert fallback.rewrite("https://127.0.0.1:5000/v2/?n=1") == "http://127.0.0.1:5000/v2/?n=1"
    assert fallback.rewrite("https://storage.example/blob") == "https://storage.example/blob"
    # Already on http: a later TLS failure on the old origin still says "use http".
    assert fallback.downgrade_after(NOT_TLS, "https://127.0.0.1:5000/v2/")


@pytest.mark.parametrize(("host", "plain_http"), [
    ("registry.example.com:5000", None),  # not loopback: never downgraded, as Docker
    ("127.0.0.1:5000", False),            # https forced
])
def test_no_downgrade_where_it_is_not_allowed(host: str, plain_http: bool | None) -> None:
    fallback = SchemeFallback(host, plain_http)
    before = fallback.scheme
    assert not fallback.downgrade_after(NOT_TLS, f"https://{host}/v2/")
    assert fallback.scheme == before


@pytest.mark.parametrize("error", [BAD_CERT, CLIENT_CERT])
def test_a_server_that_speaks_tls_is_never_downgraded(error: ssl.SSLError) -> None:
    fallback = SchemeFallback("localhost:5000", None)
    assert not fallback.downgrade_after(error, "https://localhost:5000/v2/")
    assert fallback.scheme == "https"


def test_a_redirect_target_failing_tls_does_not_downgrade_the_registry() -> None:
    fallback = SchemeFallback("127.0.0.1:5000", None)
    assert not fallback.downgrade_after(NOT_TLS, "https://127.0.0.1:6000/blob")
    assert fallback.scheme == "https"


def test_after_the_first_answer_the_scheme_is_final() -> None:
    fallback = SchemeFallback("127.0.0.1:5000", None)
    fallback.settle()
    assert not fallback.downgrade_after(NOT_TLS, "https://127.0.0.1:5000/v2/")
    assert fallback.scheme == "https"


def test_tls_errors_name_the_kind_of_fix() -> None:
    # The option to change is named by _glue from the hint (tests/unit/plugins/module_utils/_glue/test_advice.py).
    untrusted = tls_error("r.example", BAD_CERT, "ping")
    assert (untrusted.hint, untrusted.host, untrusted.operation) == ("tls_untrusted", "r.example", "ping")
    assert "CA bundle" in str(untrusted)
    assert tls_error("r.example", NOT_TLS, "ping").hint == "tls_not_spoken"
    message = str(tls_error("r.example", CLIENT_CERT, "ping"))
    assert "client certificate" in message and "certificate required" in message


@pytest.mark.parametrize("text", [
    "HTTPSConnection(host='127.0.0.1', port=5000): Failed to establish a new connection: [Errno 111] Connection refused",
    "<urllib3.connection.HTTPSConnection object at 0x7f2a1c3b5d90>: Failed to establish a new connection: "
    "[Errno 111] Connection refused",
    "HTTPConnectionPool(host='127.0.0.1', port=5000): Failed to establish a new connection: [Errno 111] "
    "Connection refused",
])
def test_a_connection_reason_leaves_out_urllib3s_connection_object(text: str) -> None:
    assert reason_of(OSError(text)) == "Failed to establish a new connection: [Errno 111] Connection refused"
