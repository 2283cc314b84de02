# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Content as a stream of byte chunks: the piece size, and resuming a stream part way.

Blobs move through the collection as iterables of ``bytes`` (registry reads,
layout and archive files, packed directories), so a restarted upload that
continues at byte ``offset`` needs the same stream without its first
``offset`` bytes, whatever the chunk boundaries. That rule lives here once.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

#: Read and write size for blob content: registry downloads, layout files, packing, unpacking.
CHUNK = 1024 * 1024


def skip_bytes(chunks: Iterable[bytes], offset: int) -> Iterator[bytes]:
    """``chunks`` without their first ``offset`` bytes; chunk boundaries after the cut are kept.

    Every chunk is still drawn from ``chunks`` (a verifying source hashes the
    whole content); the ones wholly before ``offset`` are just not handed on,
    and the chunk that straddles it is cut. An ``offset`` past the end gives
    nothing. Empty chunks are dropped (the cut is counted in bytes, not chunks).
    """
    for chunk in chunks:
        if offset >= len(chunk):
            offset -= len(chunk)
            continue
        yield chunk[offset:] if offset else chunk
        offset = 0
