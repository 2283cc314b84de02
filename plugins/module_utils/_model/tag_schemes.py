# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tags that belong to another manifest (the referrers fallback tag, cosign's tag scheme), and prune leases.

The one home of both schemes; copy, promotion, retention and verification import them from here.

- Referrers tag schema (distribution-spec, "Referrers Tag Schema"): ``<alg>-<ref>`` where the
  algorithm is cut to 32 characters and the encoded digest to 64, other characters replaced by
  ``-``. A sha256 digest gives ``sha256-<64 hex>`` (the whole digest); a sha512 digest gives
  ``sha512-<first 64 hex>``, so its subject is known only by prefix and must be matched against
  the digests at hand (:func:`attached_subject` with ``known``).
- cosign: ``sha256-<hex>.sig`` (signatures), ``.att`` (attestations), ``.sbom`` (SBOMs). cosign
  writes the whole digest; a sha512 one would exceed the 128-character tag limit, so only sha256
  subjects have cosign tags in practice (:func:`cosign_tag` returns None for the others).
- prune lease: ``ocireg-prune-lease-<unix expiry>-<random hex>``, the tag a running
  ``registry_prune`` holds while it deletes in a repository (:mod:`..._ops.coordination`).
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    validate_digest,
)

#: cosign tag suffix -> what the artifact is (the names retention and copy results use).
COSIGN_KINDS: dict[str, str] = {"sig": "signature", "att": "attestation", "sbom": "sbom"}
#: Kind of a bare fallback tag.
REFERRERS_INDEX = "referrers_index"

_NOT_TAG_CHARS = re.compile(r"[^a-zA-Z0-9_.-]")
_MAX_TAG = 128
_ATTACHED_TAG = re.compile(
    r"^(?:(?P<alg256>sha256)-(?P<hex256>[0-9a-f]{64})|(?P<alg512>sha512)-(?P<hex512>[0-9a-f]{64}|[0-9a-f]{128}))"
    r"(?:\.(?P<suffix>sig|att|sbom))?$"
)


@dataclass(frozen=True)
class AttachedTag:
    """What a scheme tag says: the subject (whole digest, or ``alg:prefix`` when cut) and the kind."""

    subject: str
    kind: str
    #: True when the tag holds only a prefix of the subject's encoded digest (sha512 fallback tags).
    truncated: bool = False

    def names(self, digest: str) -> bool:
        """True when ``digest`` is this tag's subject (by prefix for a cut sha512 digest)."""
        return digest.startswith(self.subject) if self.truncated else digest == self.subject


def referrers_tag(digest: str) -> str:
    """The fallback tag for ``digest``: algorithm (32 chars max) ``-`` encoded part (64 chars max)."""
    algorithm, _sep, encoded = validate_digest(digest).partition(":")
    return _NOT_TAG_CHARS.sub("-", f"{algorithm[:32]}-{encoded[:64]}")


def cosign_tag(digest: str, suffix: str) -> str | None:
    """cosign's tag for ``digest`` (``sha256-<hex>.sig`` ...); None when no valid tag can hold it."""
    if suffix not in COSIGN_KINDS:
        raise ValueError(f"unknown cosign suffix {suffix!r}")
    algorithm, _sep, encoded = validate_digest(digest).partition(":")
    tag = f"{algorithm}-{encoded}.{suffix}"
    return tag if len(tag) <= _MAX_TAG else None


def parse_attached_tag(tag: str) -> AttachedTag | None:
    """The scheme reading of ``tag``, or None for an ordinary tag."""
    match = _ATTACHED_TAG.match(tag)
    if match is None:
        return None
    algorithm = match.group("alg256") or match.group("alg512")
    encoded = match.group("hex256") or match.group("hex512")
    suffix = match.group("suffix")
    kind = COSIGN_KINDS[suffix] if suffix else REFERRERS_INDEX
    truncated = algorithm == "sha512" and len(encoded) == 64
    if truncated and suffix:
        return None  # cosign writes whole digests; a cut sha512 digest with a suffix is no scheme tag
    return AttachedTag(f"{algorithm}:{encoded}", kind, truncated)


def is_attached_tag(tag: str) -> bool:
    """True for a referrers fallback tag or a cosign tag (never selected by tag rules or patterns)."""
    return parse_attached_tag(tag) is not None


def is_referrers_tag(tag: str) -> bool:
    """True for a referrers fallback tag (no cosign suffix)."""
    parsed = parse_attached_tag(tag)
    return parsed is not None and parsed.kind == REFERRERS_INDEX


def attached_subject(tag: str, known: Collection[str] = ()) -> tuple[str, str] | None:
    """For a scheme tag, ``(subject digest, kind)``; else None.

    ``sha256-<hex>.sig`` -> ``("sha256:<hex>", "signature")``. A cut sha512 fallback tag is
    resolved against ``known`` digests: the one digest it is a prefix of; with none (or several)
    the prefix form ``sha512:<64 hex>`` is returned, which names no whole digest.
    """
    parsed = parse_attached_tag(tag)
    if parsed is None:
        return None
    if parsed.truncated:
        matches = [digest for digest in known if parsed.names(digest)]
        if len(matches) == 1:
            return matches[0], parsed.kind
    return parsed.subject, parsed.kind


# -- the prune lease (docs/guide_parallel.md, "The prune lease") -------------------------------------
#: Every lease tag starts with this; a lease is ``ocireg-prune-lease-<unix expiry>-<random hex>``.
LEASE_PREFIX = "ocireg-prune-lease-"
#: The lease manifest's artifact type and annotations (the tag is the truth; these help a person reading it).
LEASE_ARTIFACT_TYPE = "application/vnd.ocireg.prune-lease.v1"
LEASE_ID_ANNOTATION = "io.ocireg.registry.prune-lease.id"
LEASE_EXPIRES_ANNOTATION = "io.ocireg.registry.prune-lease.expires"
_LEASE_TAG = re.compile(r"^ocireg-prune-lease-(?P<expiry>[0-9]{1,12})-(?P<token>[0-9a-f]{8,64})$")


@dataclass(frozen=True)
class LeaseTag:
    """What a lease tag says: when it stops counting (unix seconds) and the prune run's random token."""

    expiry: int
    token: str

    def active(self, now: float, skew: float = 0.0) -> bool:
        """True while the lease counts at ``now`` (unix seconds), ``skew`` seconds of clock disagreement allowed."""
        return now < self.expiry + skew


def lease_tag(expiry: int, token: str) -> str:
    """The lease tag for a prune run holding its repository until ``expiry`` (unix seconds)."""
    tag = f"{LEASE_PREFIX}{int(expiry)}-{token}"
    if _LEASE_TAG.match(tag) is None:
        raise ValueError(f"lease token {token!r} must be 8 to 64 lowercase hex characters, expiry a positive integer")
    return tag


def parse_lease_tag(tag: str) -> LeaseTag | None:
    """The lease reading of ``tag``, or None for any other tag."""
    match = _LEASE_TAG.match(tag)
    if match is None:
        return None
    return LeaseTag(int(match.group("expiry")), match.group("token"))


def is_lease_tag(tag: str) -> bool:
    """True for a prune lease tag: never retained, planned, mirrored or synced (it is coordination, not an image)."""
    return tag.startswith(LEASE_PREFIX) and parse_lease_tag(tag) is not None
