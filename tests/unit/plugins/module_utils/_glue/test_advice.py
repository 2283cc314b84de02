"""Advice that names a module option is worded by _glue from an error's fields (hint, host), never its text."""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.tls import (
    tls_error,
)
from ansible_collections.ocireg.registry.plugins.module_utils._glue.advice import (
    ADVICE,
    advised,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    HINTS,
    AuthenticationError,
    CredentialsError,
    NotFoundError,
    OciError,
    TransportError,
)

from tests.unit.plugins.module_utils._client.transport.test_tls import BAD_CERT, CLIENT_CERT, NOT_TLS


def test_every_hint_is_worded_and_every_wording_is_a_hint() -> None:
    assert set(ADVICE) == HINTS


def test_tls_errors_name_the_option_to_change() -> None:
    assert "set ca_path" in advised(tls_error("r.example", BAD_CERT, "ping"))
    assert "plain_http: true" in advised(tls_error("r.example", NOT_TLS, "ping"))
    message = advised(tls_error("r.example", CLIENT_CERT, "ping"))
    assert "client_cert and client_key" in message and "certificate required" in message


def test_a_login_advice_names_the_host_from_the_field() -> None:
    err = AuthenticationError("authentication failed", host="r.example:5000", operation="list tags of a/b",
                              status=401, errors=[OciError("UNAUTHORIZED", "authentication required")],
                              advice="check username/password, token or auth file entry for r.example:5000",
                              hint="login_rejected")
    assert advised(err) == (
        "list tags of a/b on r.example:5000 failed: HTTP 401 (UNAUTHORIZED: authentication required): "
        "authentication failed; check username/password, registry_token or the auth_file entry for r.example:5000")


def test_plain_http_to_a_tls_port_rewords_the_reason_too() -> None:
    err = TransportError("r.example serves HTTPS on this port, but the request was sent as plain HTTP",
                         host="r.example", operation="ping", status=400, hint="https_on_plain_port", advice="use https")
    assert advised(err) == (
        "ping on r.example failed: HTTP 400: r.example serves HTTPS on this port, but plain_http is true; remove "
        "plain_http (or set it to false), with ca_path or validate_certs: false for a private certificate")


@pytest.mark.parametrize("hint, words", [("auth_file_missing", "fix auth_file"),
                                         ("auth_file_broken", "point auth_file at another one")])
def test_auth_file_advice(hint: str, words: str) -> None:
    err = CredentialsError("auth file /x.json is broken", advice="fix it", hint=hint)
    assert advised(err).startswith("auth file /x.json is broken; ") and words in advised(err)


def test_an_error_without_a_hint_keeps_the_clients_words() -> None:
    err = NotFoundError("not found", host="r", operation="GET", status=404, advice="check the name")
    assert advised(err) == err.message == "GET on r failed: HTTP 404: not found; check the name"


def test_a_missing_blob_says_the_repository_lacks_what_its_manifest_names() -> None:
    # The manifest that named the blob resolved, so "check the repository name and the tag" misleads.
    err = NotFoundError("not found", host="r.example", operation="fetch blob team/app@sha256:ab", status=404,
                        errors=[OciError("BLOB_UNKNOWN", "blob unknown to registry")],
                        advice="check the repository name and the tag or digest")
    assert advised(err) == (
        "fetch blob team/app@sha256:ab on r.example failed: HTTP 404 (BLOB_UNKNOWN: blob unknown to registry): "
        "the source repository is missing a blob that its manifest names (a corrupted or partially pushed "
        "image); push the image to it again, or check the source registry's storage")


def test_blob_unknown_elsewhere_keeps_the_clients_words() -> None:
    err = NotFoundError("not found", host="r", operation="delete blob team/app@sha256:ab", status=404,
                        errors=[OciError("BLOB_UNKNOWN")], advice="check the repository name and the tag or digest")
    assert advised(err) == err.message
