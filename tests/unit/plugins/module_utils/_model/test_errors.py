"""RegistryError is data: host, operation, status, the OCI errors, a partial result; the message is built from them."""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    HINTS,
    ConflictError,
    NotFoundError,
    OciError,
    RegistryError,
    innermost_reason,
)

UNKNOWN = OciError("MANIFEST_UNKNOWN", "manifest unknown", {"Tag": "x"})


def test_an_answer_the_client_did_not_expect_is_told_from_its_fields() -> None:
    err = NotFoundError("not found", host="r.example:5000", operation="fetch manifest team/app:x", status=404,
                        errors=[UNKNOWN], advice="check the repository name and the tag or digest")
    assert err.message == str(err) == (
        "fetch manifest team/app:x on r.example:5000 failed: HTTP 404 (MANIFEST_UNKNOWN: manifest unknown): "
        "not found; check the repository name and the tag or digest")
    assert (err.host, err.operation, err.status, err.code, err.errors) == (
        "r.example:5000", "fetch manifest team/app:x", 404, "MANIFEST_UNKNOWN", (UNKNOWN,))
    assert err.args == (err.message,)


def test_several_oci_errors_are_all_told_and_an_entry_without_message_is_its_code() -> None:
    err = RegistryError("", host="h", operation="PUT blob upload", status=400,
                        errors=[OciError("DIGEST_INVALID", "digest invalid"), OciError("SIZE_INVALID")])
    assert err.message == "PUT blob upload on h failed: HTTP 400 (DIGEST_INVALID: digest invalid; SIZE_INVALID)"
    assert err.code == "DIGEST_INVALID"


def test_without_an_answer_the_message_is_the_reason_and_the_advice() -> None:
    err = RegistryError("cannot reach h", host="h", operation="ping", advice="check the host name")
    assert err.message == "cannot reach h; check the host name" and err.head == ""
    assert RegistryError("plain words").message == "plain words"


def test_render_lets_a_caller_word_the_reason_and_advice() -> None:
    err = RegistryError("authentication failed", host="h", operation="GET", status=401, advice="check the login")
    assert err.render(advice="check username") == "GET on h failed: HTTP 401: authentication failed; check username"
    assert err.render(reason="x", advice="") == "GET on h failed: HTTP 401: x"
    assert err.message == "GET on h failed: HTTP 401: authentication failed; check the login"  # unchanged


def test_a_partial_result_travels_beside_detail_and_stays_out_of_to_dict() -> None:
    err = ConflictError("lost a race", detail={"lost": {"prod": "sha256:b"}}, partial={"tags": {}, "changed": True})
    assert err.partial == {"tags": {}, "changed": True} and err.detail == {"lost": {"prod": "sha256:b"}}
    assert err.to_dict() == {"type": "ConflictError", "message": "lost a race", "status": None, "code": None}


def test_to_dict_adds_host_operation_and_the_registrys_errors_when_known() -> None:
    err = NotFoundError("not found", host="h", operation="GET", status=404, errors=[UNKNOWN])
    assert err.to_dict() == {
        "type": "NotFoundError", "message": err.message, "status": 404, "code": "MANIFEST_UNKNOWN", "host": "h",
        "operation": "GET", "errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {"Tag": "x"}}]}


def test_fields_rebuild_the_same_error() -> None:
    err = NotFoundError("not found", host="h", operation="GET", status=404, errors=[UNKNOWN], advice="a",
                        hint="login_needed", detail={"d": 1}, partial={"p": 2})
    again = NotFoundError(err.reason, **err.fields())
    assert (again.message, again.to_dict(), again.detail, again.partial, again.hint) == (
        err.message, err.to_dict(), err.detail, err.partial, err.hint)


def test_a_hint_is_one_of_the_known_kinds() -> None:
    assert "tls_untrusted" in HINTS
    with pytest.raises(ValueError, match="unknown hint"):
        raise RegistryError("x", hint="set_ca_path")


class _Pool(Exception):
    """What urllib3's MaxRetryError looks like to requests: a pool text and the reason inside."""

    def __init__(self, reason: Exception) -> None:
        super().__init__("HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /token?x=1")
        self.reason = reason


def test_innermost_reason_leaves_out_urllib3s_pool_text() -> None:
    inner = OSError("HTTPConnection(host='127.0.0.1', port=9): Failed to establish a new connection: "
                    "[Errno 111] Connection refused")
    outer = ConnectionError(_Pool(inner))
    assert innermost_reason(outer) == "Failed to establish a new connection: [Errno 111] Connection refused"
