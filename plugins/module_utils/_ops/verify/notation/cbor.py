# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The part of CBOR (RFC 8949) that a COSE_Sign1 signature envelope uses (pure, no I/O).

Decoding: unsigned and negative integers, byte and text strings, arrays, maps, tags, the simple
values false/true/null and half/single/double floats, all of definite length. Indefinite
lengths, which COSE's deterministic encoding rules out, are refused, as is anything left over
after the one top-level item. Nesting and lengths are bounded by the input: a length that
points past the end is an error, never an allocation.

Encoding: only what a COSE ``Sig_structure`` needs (text, bytes, arrays), in the shortest form.
A separate package (cbor2) would do both, but it would be one more runtime requirement for the
few dozen lines below.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

#: COSE envelopes nest a few levels; anything deeper is not one.
MAX_DEPTH = 16


class CBORError(ValueError):
    """The bytes are not the CBOR subset read here (the text says where)."""


@dataclass(frozen=True)
class Tag:
    """A tagged item: ``tag`` is the number (1 for an epoch date/time, 18 for COSE_Sign1)."""

    tag: int
    value: Any


def loads(data: bytes) -> Any:
    """The one CBOR item in ``data``; :class:`CBORError` when malformed or followed by more bytes."""
    value, offset = _item(memoryview(bytes(data)), 0, 0)
    if offset != len(data):
        raise CBORError(f"{len(data) - offset} bytes after the CBOR item")
    return value


def _head(data: memoryview, offset: int) -> tuple[int, int, int]:
    """Major type, argument and the offset after the head."""
    if offset >= len(data):
        raise CBORError("truncated CBOR item")
    initial = data[offset]
    major, info = initial >> 5, initial & 0x1F
    offset += 1
    if info < 24:
        return major, info, offset
    if info > 27:
        raise CBORError("indefinite-length or reserved CBOR item")
    width = 1 << (info - 24)
    if offset + width > len(data):
        raise CBORError("truncated CBOR item")
    return major, int.from_bytes(data[offset:offset + width], "big"), offset + width


def _item(data: memoryview, offset: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise CBORError("CBOR nested too deeply")
    start = offset
    major, argument, offset = _head(data, offset)
    if major == 0:
        return argument, offset
    if major == 1:
        return -1 - argument, offset
    if major in (2, 3):
        end = offset + argument
        if end > len(data):
            raise CBORError("CBOR string runs past the end")
        raw = bytes(data[offset:end])
        if major == 2:
            return raw, end
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError:
            raise CBORError("CBOR text string is not UTF-8") from None
    if major == 4:
        items = []
        for _index in range(argument):
            if offset >= len(data):
                raise CBORError("CBOR array runs past the end")
            value, offset = _item(data, offset, depth + 1)
            items.append(value)
        return items, offset
    if major == 5:
        mapping: dict[Any, Any] = {}
        for _index in range(argument):
            key, offset = _item(data, offset, depth + 1)
            if isinstance(key, (list, dict)):
                raise CBORError("CBOR map key is an array or map")
            if key in mapping:
                raise CBORError(f"CBOR map has the key {key!r} twice")
            mapping[key], offset = _item(data, offset, depth + 1)
        return mapping, offset
    if major == 6:
        value, offset = _item(data, offset, depth + 1)
        return Tag(argument, value), offset
    return _simple(data, start, argument, offset)


def _simple(data: memoryview, start: int, argument: int, offset: int) -> tuple[Any, int]:
    info = data[start] & 0x1F
    if info < 24 or info == 24:
        simple = {20: False, 21: True, 22: None}
        if argument in simple:
            return simple[argument], offset
        raise CBORError(f"CBOR simple value {argument} is not used in COSE")
    raw = bytes(data[start + 1:offset])
    return struct.unpack({25: ">e", 26: ">f", 27: ">d"}[info], raw)[0], offset


def _encode_head(major: int, argument: int) -> bytes:
    if argument < 24:
        return bytes([major << 5 | argument])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * width):
            return bytes([major << 5 | info]) + argument.to_bytes(width, "big")
    raise CBORError("CBOR argument too large")


def dumps(value: Any) -> bytes:
    """The shortest CBOR encoding of bytes, text or a list of them (enough for a ``Sig_structure``)."""
    if isinstance(value, bytes):
        return _encode_head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _encode_head(3, len(raw)) + raw
    if isinstance(value, list):
        return _encode_head(4, len(value)) + b"".join(dumps(item) for item in value)
    raise CBORError(f"cannot encode {type(value).__name__} (only bytes, text and lists)")
