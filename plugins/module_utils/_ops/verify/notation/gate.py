# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Notation trust kind: its trust store, and the checker of its referrers (reads only).

It plugs into the gate (``check.py``) as a trust kind does: ``check.TRUST_LOADERS`` gets
:func:`load_trust` (the trust store files read once, before any request) and
``check.REFERRER_CHECKERS`` gets :func:`check_referrer` for referrers of artifact type
``application/vnd.cncf.notary.signature``. The gate has fetched the referrer manifest (by digest,
hashed) and checked that its subject is the image; here its one envelope blob is read (hashed,
size-capped) and checked against the trust policy. Nothing is written.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    signatures as sg,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.fetch import (
    read_trust_file,
    signature_blob,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.envelope import (
    COSE,
    CRYPTOGRAPHY_IMPORT_ERROR,
    JWS,
    SIGNATURE_ARTIFACT,
    verify_envelope,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.spec import (
    NOTATION,
    NotationPolicy,
    canonical_repository,
)

__all__ = ["NOTATION", "SIGNATURE_ARTIFACT", "NotationTrust", "check_referrer", "load_trust", "load_trust_store",
           "repository_uri", "scope_refusal"]

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - load_trust_store says so through CRYPTOGRAPHY_IMPORT_ERROR
    x509 = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Manifest,
    )

#: An envelope is a few KiB (a chain of three certificates and an optional timestamp token).
ENVELOPE_CAP = 1024 * 1024
#: Trust store files are certificates: a few KiB each, a bundle of roots at most a few hundred.
TRUST_FILE_CAP = 1024 * 1024
_TRUST_SUFFIXES = (".pem", ".crt", ".cer")


@dataclass(frozen=True)
class NotationTrust:
    """``verify.notation`` with its trust store read: what :func:`check_referrer` finds in ``trust.others``."""

    policy: NotationPolicy
    certificates: tuple[Any, ...]


def load_trust(policy: NotationPolicy) -> NotationTrust:
    """The loader of the Notation trust kind: the policy with its trust store's certificates."""
    return NotationTrust(policy, load_trust_store(policy))


# -- the trust store -----------------------------------------------------------------------------
def load_trust_store(policy: NotationPolicy) -> tuple[Any, ...]:
    """The trust store's certificates (read once per set of entries); :class:`InvalidInputError` when unusable."""
    return _load_trust_store(policy.trust_store)


@functools.lru_cache(maxsize=8)
def _load_trust_store(entries: tuple[str, ...]) -> tuple[Any, ...]:
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        raise InvalidInputError("verify.notation needs the Python package cryptography on the host that runs the "
                                "module (ansible-core depends on it): install it there")
    found: list[Any] = []
    for position, entry in enumerate(entries):
        where = f"verify.notation.trust_store[{position}]"
        if "-----BEGIN" in entry:
            found.extend(_certificates(entry.encode(), where))
            continue
        path = Path(entry).expanduser()
        if path.is_symlink():
            raise InvalidInputError(f"{where} ({entry}) is a symbolic link; the Notary Project trust store "
                                    "refuses links: give the file or directory itself")
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in _TRUST_SUFFIXES and p.is_file()
                           and not p.is_symlink())
            if not files:
                raise InvalidInputError(f"{where} ({entry}) holds no .pem, .crt or .cer file")
            for file in files:
                found.extend(_certificates(_read(file, f"{where} ({file})"), f"{where} ({file})"))
        else:
            found.extend(_certificates(_read(path, f"{where} ({entry})"), f"{where} ({entry})"))
    return tuple(found)


def _read(path: Path, where: str) -> bytes:
    return read_trust_file(path, TRUST_FILE_CAP, where, "a certificate file")


def _certificates(data: bytes, where: str) -> list[Any]:
    try:
        if b"-----BEGIN" in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise InvalidInputError(f"{where} is not an X.509 certificate in PEM or DER") from None
    return certificates


# -- the checker ---------------------------------------------------------------------------------------
def repository_uri(repo: Any) -> str | None:
    """``host/name`` of a registry repository (Docker Hub as docker.io); None for a local layout."""
    if getattr(repo, "local", False):
        return None
    return canonical_repository(f"{repo.registry.host}/{repo.name}")


def scope_refusal(repo: Any, policy: NotationPolicy) -> str | None:
    """Why no statement of the trust policy applies to ``repo``; None when its registry scopes hold it."""
    uri = repository_uri(repo)
    if "*" in policy.registry_scopes or uri in policy.registry_scopes:
        return None
    return (f"{uri or 'a local layout'} is not in verify.notation.registry_scopes "
            f"({', '.join(policy.registry_scopes)}), so no trust policy applies to it")


def check_referrer(repo: Any, manifest: Manifest, digest: str, trust: sg.Trust,
                   where: str) -> list[tuple[str, sg.Verdict]]:
    """The verdict on one Notation signature of ``digest`` (``manifest``, a referrer the gate read).

    An accepted one is a signature (it satisfies ``require: [signature]``) whose ``proof`` says
    what verified: ``kind: notation``, the envelope format, the signer's identity and issuer, the
    trust anchor, the signing time. The payload must name the image's media type and size as the
    referrer's subject descriptor gives them: the gate has checked those against the image's own
    manifest (or the index naming it) when it read that.
    """
    material = trust.others.get(NOTATION)
    if not isinstance(material, NotationTrust):
        return [(where, sg.Verdict(None, reason="a Notation signature, and verify.notation is not given"))]
    refused = scope_refusal(repo, material.policy)
    if refused is not None:
        return [(where, sg.Verdict(None, reason=refused))]
    layers = [layer for layer in manifest.layers if layer.media_type in (JWS, COSE)]
    if len(manifest.layers) != 1 or not layers:
        return [(where, sg.Verdict(None, reason="a Notation signature manifest has exactly one JWS or COSE layer"))]
    layer = layers[0]
    data = signature_blob(repo, layer, ENVELOPE_CAP)
    if isinstance(data, str):
        return [(where, sg.Verdict(None, reason=data))]
    subject = manifest.subject
    artifact = {"mediaType": subject.media_type, "size": subject.size} if subject is not None else None
    verdict = verify_envelope(data, layer.media_type, digest, material.policy, material.certificates,
                              artifact=artifact)
    if not verdict.ok:
        return [(where, sg.Verdict(None, reason=verdict.reason))]
    return [(where, sg.Verdict(None, kind=sg.SIGNATURE, proof=dict(verdict.result or {})))]
