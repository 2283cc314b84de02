"""Unit tests for reading one JSON object out of an answer."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import ManifestError
from ansible_collections.ocireg.registry.plugins.module_utils._model.json_documents import (
    NOT_AN_OBJECT,
    NOT_JSON,
    json_object,
)


def _fail(found: str) -> ManifestError:
    return ManifestError(f"the registry answered with {found}")


@pytest.mark.parametrize("raw", [b'{"a": 1}', '{"a": 1}'])
def test_an_object_is_returned(raw: bytes | str) -> None:
    assert json_object(raw, _fail) == {"a": 1}


@pytest.mark.parametrize("raw,found", [
    (b"<html>", NOT_JSON), (b"", NOT_JSON), (b"\xff\xfe\xfd", NOT_JSON),  # the last is not text at all
    (b"[1]", NOT_AN_OBJECT), (b"null", NOT_AN_OBJECT), (b'"secret"', NOT_AN_OBJECT),
])
def test_anything_else_raises_the_callers_error_saying_what_was_found(raw: bytes, found: str) -> None:
    with pytest.raises(ManifestError) as caught:
        json_object(raw, _fail)
    assert caught.value.message == f"the registry answered with {found}"
    error = caught.value
    assert error.__cause__ is None and (error.__suppress_context__ or error.__context__ is None)  # no parser trace


def test_the_document_never_reaches_the_message() -> None:
    with pytest.raises(ManifestError) as caught:
        json_object(b'["hunter2"]', _fail)
    assert "hunter2" not in caught.value.message
