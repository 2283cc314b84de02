# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Content digests: validation, computation and streaming verification.

A digest is ``algorithm:encoded`` (OCI image-spec, descriptor.md). Only the
algorithms registries actually use are supported: ``sha256`` (64 lowercase hex
characters) and ``sha512`` (128). Anything else is refused up front rather than
half-supported, so a digest that passes :func:`validate_digest` can always be
verified.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidDigestError,
)

#: Supported algorithms and the length of their hex-encoded part.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
DEFAULT_ALGORITHM = "sha256"

_EXPECTED_FORM = "expected sha256:<64 lowercase hex> or sha512:<128 lowercase hex>"
# The OCI grammar for the algorithm part; used only to tell "unsupported" from "garbage".
_ALGORITHM_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")
_LOWER_HEX = re.compile(r"[0-9a-f]+")


def _invalid(text: object, reason: str) -> InvalidDigestError:
    return InvalidDigestError(f"{text!r} is not a valid digest: {reason} ({_EXPECTED_FORM})")


def validate_digest(digest: str) -> str:
    """Return ``digest`` unchanged if it is a well-formed, supported digest.

    Raises :class:`InvalidDigestError` saying what is wrong otherwise.
    """
    if not isinstance(digest, str):
        raise _invalid(digest, f"a digest must be a string, not {type(digest).__name__}")
    algorithm, sep, encoded = digest.partition(":")
    if not sep:
        raise _invalid(digest, "missing the 'algorithm:' prefix")
    if algorithm not in ALGORITHMS:
        if _ALGORITHM_GRAMMAR.fullmatch(algorithm):
            raise _invalid(digest, f"unsupported algorithm {algorithm!r}")
        raise _invalid(digest, f"malformed algorithm {algorithm!r}")
    expected_length = ALGORITHMS[algorithm]
    if not _LOWER_HEX.fullmatch(encoded):
        if encoded and re.fullmatch(r"[0-9a-fA-F]+", encoded):
            raise _invalid(digest, "the hex part must be lowercase")
        raise _invalid(digest, "the part after the algorithm must be hex characters [0-9a-f]")
    if len(encoded) != expected_length:
        raise _invalid(digest, f"{algorithm} needs {expected_length} hex characters, got {len(encoded)}")
    return digest


def _check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise InvalidDigestError(
            f"unsupported digest algorithm {algorithm!r}: use one of {', '.join(sorted(ALGORITHMS))}"
        )
    return algorithm


def compute_digest(data: bytes | bytearray | memoryview, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """Return the ``algorithm:hex`` digest of ``data``."""
    return f"{algorithm}:{hashlib.new(_check_algorithm(algorithm), bytes(data)).hexdigest()}"


class Hasher:
    """Hash content as it streams past, counting its bytes.

    ``Hasher("sha256")`` only computes; ``Hasher("sha256:abc…", expected_size=N)``
    also knows what to expect, and :meth:`verify` checks both the digest and
    (when given) the size.
    """

    def __init__(self, digest_or_algorithm: str = DEFAULT_ALGORITHM, expected_size: int | None = None) -> None:
        if isinstance(digest_or_algorithm, str) and ":" in digest_or_algorithm:
            self.expected: str | None = validate_digest(digest_or_algorithm)
            self.algorithm = digest_or_algorithm.partition(":")[0]
        else:
            self.expected = None
            self.algorithm = _check_algorithm(digest_or_algorithm)
        if expected_size is not None and (isinstance(expected_size, bool) or expected_size < 0):
            raise InvalidDigestError(f"expected size must be a non-negative integer, got {expected_size!r}")
        self.expected_size = expected_size
        self._hash = hashlib.new(self.algorithm)
        self.size = 0

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed the next chunk of content."""
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def digest(self) -> str:
        """The digest of everything fed so far."""
        return f"{self.algorithm}:{self._hash.hexdigest()}"

    def verify(self) -> str:
        """Return the computed digest; raise :class:`DigestMismatchError` if it is not what was expected."""
        actual = self.digest
        if self.expected_size is not None and self.size != self.expected_size:
            raise DigestMismatchError(
                f"content expected as {self.expected or actual} has {self.size} bytes instead of the "
                f"{self.expected_size} announced: it was truncated, corrupted or changed in transit; "
                "retry, and if it persists the source registry holds broken content",
                detail={"expected_size": self.expected_size, "actual_size": self.size},
            )
        if self.expected is not None and actual != self.expected:
            raise DigestMismatchError(
                f"content expected to have digest {self.expected} hashed to {actual}: it was corrupted "
                "or changed in transit; retry, and if it persists the source registry holds broken content",
                detail={"expected": self.expected, "actual": actual},
            )
        return actual


def verify_stream(
    chunks: Iterable[bytes], digest: str, size: int | None = None
) -> Iterator[bytes]:
    """Yield ``chunks`` unchanged while hashing them; raise at the end if they do not match.

    The digest is only known to be right once the last chunk has passed, so a
    consumer must not commit anything (a tag, a pushed manifest) before this
    generator is exhausted. If ``size`` is given, content that grows past it
    fails at once instead of being read to the end.
    """
    hasher = Hasher(digest, expected_size=size)
    for chunk in chunks:
        if size is not None and hasher.size + len(chunk) > size:
            raise DigestMismatchError(
                f"content expected as {digest} is larger than the {size} bytes announced: "
                "it was corrupted or changed in transit; retry, and if it persists the source "
                "registry holds broken content",
                detail={"expected_size": size, "actual_size_at_least": hasher.size + len(chunk)},
            )
        hasher.update(chunk)
        yield chunk
    hasher.verify()
