# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The verification gate: read an image's signatures and referrers, and check them against a policy.

Reads only (never a write request), so a caller runs it before any write and a failure leaves
the destination untouched. Signatures are looked for where cosign puts them:

- the tag scheme: ``sha256-<hex>.sig`` (simple signing, one layer per signature) and
  ``sha256-<hex>.att`` (DSSE envelopes, one layer per attestation), via
  :func:`~.tag_schemes.cosign_tag`;
- OCI 1.1 referrers (:meth:`Repository.referrers`: the referrers API, or on registries without it,
  Distribution 2.8 among them, the ``sha256-<hex>`` fallback index): sigstore bundles and cosign's
  simple-signing referrers.

Whoever can push to a repository can add entries to both places, so nothing found there is
trusted until its signature verifies with a given key and its signed content names exactly the
digest being verified. Every manifest and blob is read by digest and hashed; payloads are
size-capped. Offline: no transparency log, certificate or timestamp is consulted.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    cosign_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    read_small_blob,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    signatures as sg,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation import (
    gate as nv,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    VerifyPolicy,
    parse_verify,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    from collections.abc import Sequence

    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Descriptor,
        Manifest,
    )

#: A simple-signing payload is a few hundred bytes (a few KiB with many annotations).
PAYLOAD_CAP = 1024 * 1024
#: DSSE attestations and bundles can embed a whole SBOM or provenance document.
ENVELOPE_CAP = 16 * 1024 * 1024
#: Layers of one signature manifest and referrers of one subject that are examined: anyone who can
#: push can append entries, and an unbounded list must not make verification unbounded.
MAX_SIGNATURE_LAYERS = 64
MAX_REFERRERS = 256
#: Key files are a few hundred bytes; anything this big is not one.
KEY_FILE_CAP = 64 * 1024
#: Index children that are buildkit attestation manifests, not images (platform unknown/unknown).
_ATTESTATION_CHILD = ("vnd.docker.reference.type", "attestation-manifest")

TAG_SCHEME = "tag_scheme"
REFERRER = "referrer"


@dataclass(frozen=True)
class _Found:
    """One signature examined: where it was and what checking it gave."""

    source: str
    manifest: str
    where: str
    verdict: sg.Verdict


def load_keys(policy: VerifyPolicy) -> list[sg.PublicKey]:
    """The policy's public keys, files read (controller-side paths on a delegated task)."""
    keys = []
    for position, source in enumerate(policy.keys):
        where = source.describe(position)
        if source.pem is not None:
            keys.append(sg.load_public_key(source.pem, where))
            continue
        path = Path(str(source.path)).expanduser()
        try:
            with path.open("rb") as handle:
                data = handle.read(KEY_FILE_CAP + 1)
        except OSError as exc:
            raise InvalidInputError(f"{where} cannot be read: {exc.strerror or exc}") from None
        if len(data) > KEY_FILE_CAP:
            raise InvalidInputError(f"{where} is larger than {KEY_FILE_CAP // 1024} KiB; it is not a public key file")
        keys.append(sg.load_public_key(data, where))
    return keys


def make_verifier(value: Any) -> Callable[[Any, str], dict[str, Any]] | None:
    """The gate the ``verify`` option asks for, as one call ``(repository, digest) -> verified``; None when unset.

    The option is parsed and the keys are read once, here, so bad input fails before any request
    and a mirror does not read the key files once per tag.
    """
    policy = parse_verify(value)
    if policy is None:
        return None
    keys = load_keys(policy)
    if policy.notation is not None:  # Notation: its trust store read (and refused) before any request
        nv.load_trust_store(policy.notation)

    def verify(repo: Any, digest: str) -> dict[str, Any]:
        return verify_image(repo, digest, policy, keys)
    return verify


def verify_image(repo: Repository, subject: Manifest | str, policy: VerifyPolicy,
                 keys: Sequence[sg.PublicKey] | None = None) -> dict[str, Any]:
    """Check ``subject`` (a manifest already read, or a digest) in ``repo`` against ``policy``.

    Returns what was verified::

        {"digest": D, "index": "self", "verified": [
            {"digest": D_or_child,
             "signatures": [{"kind": "signature", "key": "sha256:<fingerprint>", "algorithm": "ecdsa-secp256r1",
                             "source": "tag_scheme" | "referrer", "manifest": sig manifest digest,
                             "predicate_type": None | "..."}],
             "referrers": [{"artifact_type": T, "digest": referrer digest, "signed_by": fingerprint | None}]}]}

    Raises :class:`VerificationError` (one line: which requirement failed for which digest) at the
    first digest that does not meet the policy, :class:`InvalidInputError` for unusable keys.
    """
    if keys is None:
        keys = load_keys(policy)
    manifest = repo.fetch_manifest(subject) if isinstance(subject, str) else subject
    targets = [manifest.digest] if policy.index in ("self", "both") or not manifest.is_index else []
    if manifest.is_index and policy.index in ("children", "both"):
        children = [child.digest for child in manifest.manifests if not _is_attestation_child(child)]
        if not children:
            raise VerificationError(f"verify: {_display(repo, manifest.digest)} is an index without image children, "
                                    "so verify.index=children checks nothing; use index: self")
        targets.extend(dict.fromkeys(children))
    # What the manifest and the index (both hashed) say of each target: a Notation payload must match it.
    known = {manifest.digest: (manifest.media_type, manifest.size),
             **{child.digest: (child.media_type, child.size) for child in manifest.manifests}}
    verified = [_verify_digest(repo, digest, policy, keys, known.get(digest)) for digest in targets]
    return {"digest": manifest.digest, "index": policy.index, "verified": verified}


def find_signatures(repo: Repository, digest: str, keys: Sequence[sg.PublicKey],
                    referrers: Sequence[Descriptor] | None = None) -> list[_Found]:
    """Every signature and attestation of ``digest`` in ``repo``, each with its verdict.

    ``referrers`` is the subject's referrer list when the caller already read it.
    """
    found: list[_Found] = []
    for suffix in ("sig", "att"):
        tag = cosign_tag(digest, suffix)
        if tag is None:
            continue
        try:
            manifest = repo.fetch_manifest(tag)
        except NotFoundError:
            continue
        found.extend(_check_layers(repo, manifest, digest, keys, TAG_SCHEME, f"tag {tag}"))
    if referrers is None:
        referrers = repo.referrers(digest)
    for descriptor in referrers[:MAX_REFERRERS]:
        if not (sg.is_bundle_media_type(descriptor.artifact_type)
                or descriptor.artifact_type == sg.COSIGN_SIG_ARTIFACT):
            continue
        where = f"referrer {descriptor.digest}"
        fetched = _referrer_manifest(repo, descriptor.digest)
        if isinstance(fetched, str):
            found.append(_Found(REFERRER, descriptor.digest, where, sg.Verdict(None, reason=fetched)))
            continue
        found.extend(_check_layers(repo, fetched, digest, keys, REFERRER, where))
    return found


def _verify_digest(repo: Repository, digest: str, policy: VerifyPolicy, keys: Sequence[sg.PublicKey],
                   known: tuple[str, int | None] | None = None) -> dict[str, Any]:
    display = _display(repo, digest)
    referrers = repo.referrers(digest)
    cosign = any(kind != nv.NOTATION for kind in policy.require)
    found = find_signatures(repo, digest, keys, referrers) if cosign else []
    accepted = [item for item in found if item.verdict.ok]
    # Notation: its own trust store and policy, over the same referrer list.
    notation = nv.verify_notation(repo, digest, policy.notation, referrers, display, known) if policy.notation else []
    for kind in policy.require:
        if kind == nv.NOTATION:
            continue
        matching = [item for item in accepted if item.verdict.kind == kind]
        if kind == sg.SIGNATURE and policy.annotations:
            if matching and not any(sg.annotations_match(item.verdict, policy.annotations) for item in matching):
                wanted = ", ".join(f"{k}={v}" for k, v in policy.annotations.items())
                raise VerificationError(f"verify: {display} has valid signatures, but none carries the "
                                        f"annotations {wanted}")
            matching = [item for item in matching if sg.annotations_match(item.verdict, policy.annotations)]
        if not matching:
            raise VerificationError(_missing(kind, display, digest, found))
    return {
        "digest": digest,
        "signatures": [_signature_result(item) for item in accepted] + notation,
        "referrers": [item for requirement in policy.referrers
                      for item in _check_referrers(repo, display, referrers, requirement, keys)],
    }


def _check_referrers(repo: Repository, display: str, referrers: Sequence[Descriptor], requirement: Any,
                     keys: Sequence[sg.PublicKey]) -> list[dict[str, Any]]:
    attached = [d for d in referrers if d.artifact_type == requirement.artifact_type][:MAX_REFERRERS]
    if not attached:
        raise VerificationError(f"verify: {display} has no referrer of artifact type {requirement.artifact_type}")
    results = []
    reasons = []
    for descriptor in attached:
        signed_by = None
        if requirement.signed:
            found = find_signatures(repo, descriptor.digest, keys)
            good = [item for item in found if item.verdict.ok and item.verdict.kind == sg.SIGNATURE]
            if not good:
                rejected = [item for item in found if not item.verdict.ok]
                reasons.append(f"{descriptor.digest}: " + (_reasons(rejected) if rejected else "no signature"))
                continue
            signed_by = good[0].verdict.key.fingerprint if good[0].verdict.key else None
        results.append({"artifact_type": requirement.artifact_type, "digest": descriptor.digest,
                        "signed_by": signed_by})
    if not results:
        raise VerificationError(f"verify: no {requirement.artifact_type} referrer of {display} is signed by the "
                                f"given keys ({_join(reasons)})")
    return results


def _check_layers(repo: Repository, manifest: Manifest, digest: str, keys: Sequence[sg.PublicKey],
                  source: str, where: str) -> list[_Found]:
    if manifest.is_index or manifest.is_schema1:
        return [_Found(source, manifest.digest, where, sg.Verdict(None, reason="not a signature manifest"))]
    if source == REFERRER and (manifest.subject is None or manifest.subject.digest != digest):
        named = manifest.subject.digest if manifest.subject is not None else "no subject"
        return [_Found(source, manifest.digest, where, sg.Verdict(None, reason=f"its subject is {named}"))]
    found = []
    for position, layer in enumerate(manifest.layers[:MAX_SIGNATURE_LAYERS], start=1):
        place = f"{where} layer {position}"
        media_type = layer.media_type
        if media_type == sg.SIMPLE_SIGNING:
            check, cap = _simple_signing(layer), PAYLOAD_CAP
        elif media_type == sg.DSSE_ENVELOPE:
            check, cap = sg.verify_envelope_blob, ENVELOPE_CAP
        elif sg.is_bundle_media_type(media_type):
            check, cap = sg.verify_bundle, ENVELOPE_CAP
        else:
            continue  # cosign's .sbom and other attachments: no signature in them
        try:
            data = read_small_blob(repo, layer.digest, layer.size, cap, _too_large_signature(cap))
        except (TooLargeError, DigestMismatchError) as exc:
            found.append(_Found(source, manifest.digest, place, sg.Verdict(None, reason=exc.message)))
            continue
        except NotFoundError:
            found.append(_Found(source, manifest.digest, place, sg.Verdict(None, reason="its blob is missing")))
            continue
        found.append(_Found(source, manifest.digest, place, check(data, keys, digest)))
    return found


def _simple_signing(layer: Descriptor) -> Any:
    signature = layer.annotations.get(sg.SIGNATURE_ANNOTATION)

    def check(data: bytes, keys: Sequence[sg.PublicKey], digest: str) -> sg.Verdict:
        return sg.verify_simple_signing(data, signature, keys, digest)
    return check


def _referrer_manifest(repo: Repository, digest: str) -> Manifest | str:
    """The referrer's manifest, or why it cannot be read (a listed referrer may be gone or hostile)."""
    try:
        return repo.fetch_manifest(digest)
    except NotFoundError:
        return "listed, but the manifest is missing"
    except (ManifestError, DigestMismatchError, TooLargeError) as exc:
        return exc.message


def _display(repo: Any, digest: str) -> str:
    """``team/app@sha256:…``; a local layout names its path (its repository may be unnamed)."""
    return repo.where(digest) if getattr(repo, "local", False) else f"{repo.name}@{digest}"


def _is_attestation_child(child: Descriptor) -> bool:
    key, value = _ATTESTATION_CHILD
    return child.annotations.get(key) == value


def _signature_result(item: _Found) -> dict[str, Any]:
    key = item.verdict.key
    return {"kind": item.verdict.kind, "key": key.fingerprint if key else None,
            "algorithm": key.algorithm if key else None, "source": item.source, "manifest": item.manifest,
            "predicate_type": item.verdict.predicate_type}


def _missing(kind: str, display: str, digest: str, found: Sequence[_Found]) -> str:
    # Valid signatures of the other kind are no failed attempts at this one: leave them out.
    rejected = [item for item in found if not item.verdict.ok]
    if not rejected:
        tag = cosign_tag(digest, "sig" if kind == sg.SIGNATURE else "att")
        places = ([f"no {tag} tag"] if tag else []) + [f"no {kind} referrer"]
        return f"verify: {display} has no {kind} ({', '.join(places)})"
    return f"verify: {display} has no valid {kind} by the given keys ({_reasons(rejected)})"


def _reasons(found: Sequence[_Found]) -> str:
    return _join([f"{item.where}: {item.verdict.reason}" for item in found])


def _join(reasons: Sequence[str], limit: int = 3) -> str:
    shown = "; ".join(reasons[:limit])
    return shown + (f"; and {len(reasons) - limit} more" if len(reasons) > limit else "")


def _too_large_signature(cap: int) -> Callable[[int], str]:
    """The size-cap message for a signature blob (a function of the size seen)."""
    def message(size: int) -> str:
        return f"{size} bytes, more than the {cap} a signature may be"
    return message
