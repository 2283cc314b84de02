# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Notation gate: find an image's Notation signatures among its referrers and check them (reads only).

The trust store is read from the controller-side files once per set of entries; referrer
manifests and envelope blobs are read by digest (hashed) and size-capped; nothing is written.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidInputError,
    ManifestError,
    NotFoundError,
    TooLargeError,
    VerificationError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    read_small_blob,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.envelope import (
    COSE,
    CRYPTOGRAPHY_IMPORT_ERROR,
    JWS,
    SIGNATURE_ARTIFACT,
    Verdict,
    verify_envelope,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.spec import (
    NOTATION,
    NotationPolicy,
    canonical_repository,
)

__all__ = ["NOTATION", "load_trust_store", "repository_uri", "verify_notation"]

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - load_trust_store says so through CRYPTOGRAPHY_IMPORT_ERROR
    x509 = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Descriptor,
    )

#: An envelope is a few KiB (a chain of three certificates and an optional timestamp token).
ENVELOPE_CAP = 1024 * 1024
#: Notation referrers of one subject that are examined (anyone who can push can add more).
MAX_SIGNATURES = 64
#: Trust store files are certificates: a few KiB each, a bundle of roots at most a few hundred.
TRUST_FILE_CAP = 1024 * 1024
_TRUST_SUFFIXES = (".pem", ".crt", ".cer")


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
    try:
        with path.open("rb") as handle:
            data = handle.read(TRUST_FILE_CAP + 1)
    except OSError as exc:
        raise InvalidInputError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if len(data) > TRUST_FILE_CAP:
        raise InvalidInputError(f"{where} is larger than {TRUST_FILE_CAP // 1024} KiB; it is not a certificate file")
    return data


def _certificates(data: bytes, where: str) -> list[Any]:
    try:
        if b"-----BEGIN" in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise InvalidInputError(f"{where} is not an X.509 certificate in PEM or DER") from None
    return certificates


# -- the gate ------------------------------------------------------------------------------------------
def repository_uri(repo: Any) -> str | None:
    """``host/name`` of a registry repository (Docker Hub as docker.io); None for a local layout."""
    if getattr(repo, "local", False):
        return None
    return canonical_repository(f"{repo.registry.host}/{repo.name}")


def verify_notation(repo: Repository, digest: str, policy: NotationPolicy, referrers: Sequence[Descriptor],
                    display: str, known: tuple[str, int | None] | None = None) -> list[dict[str, Any]]:
    """The Notation signatures of ``digest`` that ``policy`` accepts (at least one), as result entries.

    ``referrers`` is the subject's referrer list, already read; ``known`` the image's media type and
    size when the caller has read its manifest (else one HEAD asks, as the payload must match them).
    Every Notation referrer (at most :data:`MAX_SIGNATURES`) is checked, so the result lists each
    accepted one. Raises :class:`VerificationError` (one line) when the repository is outside the
    registry scopes or no signature is accepted.
    """
    uri = repository_uri(repo)
    if "*" not in policy.registry_scopes and uri not in policy.registry_scopes:
        where = uri or "a local layout"
        raise VerificationError(f"verify: {display}: {where} is not in verify.notation.registry_scopes "
                                f"({', '.join(policy.registry_scopes)}); no trust policy applies to it")
    trusted = load_trust_store(policy)
    candidates = [d for d in referrers if d.artifact_type == SIGNATURE_ARTIFACT][:MAX_SIGNATURES]
    if not candidates:
        raise VerificationError(f"verify: {display} has no Notation signature (no referrer of artifact type "
                                f"{SIGNATURE_ARTIFACT})")
    artifact = {"mediaType": known[0], "size": known[1]} if known else _artifact(repo, digest)
    accepted, reasons = [], []
    for descriptor in candidates:
        where = f"referrer {descriptor.digest}"
        verdict = _check_referrer(repo, descriptor.digest, digest, policy, trusted, artifact)
        if verdict.ok:
            accepted.append({**dict(verdict.result or {}), "source": "referrer", "manifest": descriptor.digest})
        else:
            reasons.append(f"{where}: {verdict.reason}")
    if not accepted:
        shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        raise VerificationError(f"verify: {display} has no Notation signature the trust policy accepts ({shown})")
    return accepted


def _artifact(repo: Any, digest: str) -> dict[str, Any]:
    # The payload must name the image's media type and size too; one HEAD tells both.
    try:
        descriptor = repo.resolve(digest)
    except (NotFoundError, ManifestError):
        return {}
    return {"mediaType": descriptor.media_type, "size": descriptor.size} if descriptor is not None else {}


def _check_referrer(repo: Any, manifest_digest: str, digest: str, policy: NotationPolicy, trusted: Sequence[Any],
                    artifact: Mapping[str, Any]) -> Verdict:
    try:
        manifest = repo.fetch_manifest(manifest_digest)
    except NotFoundError:
        return Verdict(reason="listed, but the manifest is missing")
    except (ManifestError, DigestMismatchError, TooLargeError) as exc:
        return Verdict(reason=exc.message)
    if manifest.is_index or manifest.is_schema1:
        return Verdict(reason="not a signature manifest")
    if manifest.subject is None or manifest.subject.digest != digest:
        named = manifest.subject.digest if manifest.subject is not None else "no subject"
        return Verdict(reason=f"its subject is {named}")
    layers = [layer for layer in manifest.layers if layer.media_type in (JWS, COSE)]
    if len(manifest.layers) != 1 or not layers:
        return Verdict(reason="a Notation signature manifest has exactly one JWS or COSE layer")
    layer = layers[0]
    try:
        data = read_small_blob(repo, layer.digest, layer.size, ENVELOPE_CAP,
                               lambda size: f"{size} bytes, more than the {ENVELOPE_CAP} an envelope may be")
    except (TooLargeError, DigestMismatchError) as exc:
        return Verdict(reason=exc.message)
    except NotFoundError:
        return Verdict(reason="its envelope blob is missing")
    return verify_envelope(data, layer.media_type, digest, policy, trusted, artifact=artifact)
