# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reads of trust and signature material, shared by every kind of signature the gate checks (reads only).

Trust material (keys, a trusted root, a trust store) is read from files the user names, capped,
before any request: a file that cannot be read fails the task with one line. A signature's
manifest and blobs are named by whoever pushed them, so a failed read is no error of the gate:
it is the reason that one signature is refused, and the others are still checked.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidInputError,
    ManifestError,
    NotFoundError,
    TooLargeError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    read_small_blob,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Descriptor,
        Manifest,
    )


def read_trust_file(path: str | Path, cap: int, where: str, what: str) -> bytes:
    """The file at ``path`` (``~`` expanded; at most ``cap`` bytes), ``where`` naming it in a refusal.

    Raises :class:`InvalidInputError` when it cannot be read or is larger than ``cap``: then it is
    not ``what`` (``a public key file``, say).
    """
    try:
        with Path(path).expanduser().open("rb") as handle:
            data = handle.read(cap + 1)
    except OSError as exc:
        raise InvalidInputError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise InvalidInputError(f"{where} is larger than {cap // 1024} KiB; it is not {what}")
    return data


def referrer_manifest(repo: Repository, digest: str) -> Manifest | str:
    """The referrer's manifest, or why it cannot be read (a listed referrer may be gone or hostile)."""
    try:
        return repo.fetch_manifest(digest)
    except NotFoundError:
        return "listed, but the manifest is missing"
    except (ManifestError, DigestMismatchError, TooLargeError) as exc:
        return exc.message


def signature_blob(repo: Repository, layer: Descriptor, cap: int) -> bytes | str:
    """The blob of a signature layer (hashed, at most ``cap`` bytes), or why it cannot be read."""
    try:
        return read_small_blob(repo, layer.digest, layer.size, cap,
                               lambda size: f"{size} bytes, more than the {cap} a signature may be")
    except (TooLargeError, DigestMismatchError) as exc:
        return exc.message
    except NotFoundError:
        return "its blob is missing"
