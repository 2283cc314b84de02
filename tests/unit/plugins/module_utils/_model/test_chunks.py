"""Unit tests for skipping the start of a chunk stream (resumed uploads read from byte ``offset``)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model.chunks import skip_bytes


def test_cut_inside_a_chunk_keeps_the_later_boundaries() -> None:
    assert list(skip_bytes([b"abc", b"def", b"gh"], 4)) == [b"ef", b"gh"]


def test_cut_on_a_boundary_hands_on_whole_chunks() -> None:
    assert list(skip_bytes([b"abc", b"def"], 3)) == [b"def"]


def test_offset_zero_is_the_stream_itself_without_empty_chunks() -> None:
    chunks = [b"abc", b"", b"de"]
    out = list(skip_bytes(chunks, 0))
    assert out == [b"abc", b"de"]
    assert out[0] is chunks[0]  # not copied when nothing is cut


def test_offset_past_the_end_gives_nothing_but_reads_everything() -> None:
    drawn: list[bytes] = []

    def source():
        for chunk in (b"ab", b"cd"):
            drawn.append(chunk)
            yield chunk

    assert list(skip_bytes(source(), 10)) == []
    assert drawn == [b"ab", b"cd"]  # a verifying source must still see every byte


@given(st.lists(st.binary(max_size=20), max_size=8), st.integers(min_value=0, max_value=200))
def test_same_bytes_as_slicing_the_whole(chunks: list[bytes], offset: int) -> None:
    assert b"".join(skip_bytes(chunks, offset)) == b"".join(chunks)[offset:]
    assert all(skip_bytes(chunks, offset))  # no empty chunk is handed on
