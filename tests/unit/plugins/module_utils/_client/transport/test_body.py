"""Capped body reads alone: documents, error bodies (fake responses: only iter_content/close matter)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.body import (
    BodyCut,
    read_document,
    read_error_body,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    TooLargeError,
)


class FakeBody(requests.Response):
    """A response whose body is ``chunks`` (an exception in them is raised while reading)."""

    def __init__(self, chunks: list[bytes | Exception], content_length: str | None = None) -> None:
        super().__init__()
        self.status_code = 200
        self.chunks = chunks
        self.closed = False
        self.pulled = 0
        if content_length is not None:
            self.headers["Content-Length"] = content_length

    def iter_content(self, chunk_size: int = 1, decode_unicode: bool = False) -> Iterator[bytes]:  # type: ignore[override]
        for chunk in self.chunks:
            if isinstance(chunk, Exception):
                raise chunk
            self.pulled += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed = True


def test_a_document_within_the_cap_becomes_the_content() -> None:
    response = FakeBody([b"ab", b"cd"])
    assert read_document(response, 4, "GET /x", "r.example") == b"abcd"
    assert response.content == b"abcd" and response.closed


def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    response = FakeBody([b"x" * 10], content_length="10")
    with pytest.raises(TooLargeError, match="10 bytes, over the 4 byte limit"):
        read_document(response, 4, "GET /x", "r.example")
    assert response.pulled == 0 and response.closed


def test_an_undeclared_body_is_cut_as_soon_as_it_passes_the_cap() -> None:
    response = FakeBody([b"xxx", b"xxx", b"never read"])
    with pytest.raises(TooLargeError, match="exceeds the 4 byte limit"):
        read_document(response, 4, "GET /x", "r.example")
    assert response.pulled == 6 and response.closed


def test_a_body_that_breaks_off_is_a_body_cut_with_its_cause() -> None:
    broken = requests.exceptions.ChunkedEncodingError("connection broken")
    response = FakeBody([b"ab", broken])
    with pytest.raises(BodyCut) as caught:
        read_document(response, 100, "GET /x", "r.example")
    assert caught.value.cause is broken and response.closed


def test_error_bodies_are_cut_at_their_cap_and_never_raise() -> None:
    assert read_error_body(FakeBody([b"e" * 8, b"e" * 8, b"e" * 8]), 10) == b"e" * 10
    broken = FakeBody([b"err", requests.exceptions.ConnectionError("reset")])
    assert read_error_body(broken, 10) == b"err" and broken.closed
