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
  simple-signing referrers, and those of other trust kinds (Notation: :mod:`.notation.gate`), each
  checked by its kind's entry in :data:`REFERRER_CHECKERS`.

The cosign tags are read only when a key or keyless rule is given: nothing else can accept what
they hold, so a gate with only another kind (Notation) costs no request for them.

Whoever can push to a repository can add entries to both places, so nothing found there is
trusted until its signature verifies (with a given key, or as a keyless signature by a given
identity: :mod:`.keyless`) and its signed content names exactly the digest being verified. Every
manifest and blob is read by digest and hashed; payloads are size-capped. Offline: a keyless
signature is checked against the trusted root given (or shipped), with the transparency-log proof
it carries; nothing is fetched.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    NotFoundError,
    VerificationError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.mediatypes import (
    is_index as is_index_type,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    cosign_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    keyless as kl,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    signatures as sg,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.fetch import (
    read_trust_file,
    referrer_manifest,
    signature_blob,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.keyless_root import (
    PUBLIC_GOOD_TRUSTED_ROOT,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation import (
    gate as notation,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    VerifyPolicy,
    parse_verify,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
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
#: The oldest cryptography with everything keyless verification uses (``*_utc`` validity times).
_KEYLESS_CRYPTOGRAPHY = (42, 0)
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


@dataclass(frozen=True)
class AlreadyRead:
    """What the caller read of the repository in this run (hashed reads), so the gate does not read it again.

    - ``images``: the descriptors of image manifests read (digest -> descriptor). An index given here is
      read again: its children's descriptors (annotations included) decide what is verified.
    - ``tags``: the repository's whole tag list (tag -> digest) as listed, or None when it was not: a
      cosign tag it does not hold is not there (no request), one it holds is read by the digest listed.
    - ``referrers``: each subject's referrers as listed (a subject left out is asked for).

    The gate then sees the repository as the caller saw it: the same moment its decisions came from.
    """

    images: Mapping[str, Descriptor] = field(default_factory=dict)
    tags: Mapping[str, str] | None = None
    referrers: Mapping[str, Sequence[Descriptor]] = field(default_factory=dict)


NOTHING_READ = AlreadyRead()


def load_keys(policy: VerifyPolicy) -> list[sg.PublicKey]:
    """The policy's public keys, files read (controller-side paths on a delegated task)."""
    keys = []
    for position, source in enumerate(policy.keys):
        where = source.describe(position)
        if source.pem is not None:
            keys.append(sg.load_public_key(source.pem, where))
            continue
        data = read_trust_file(str(source.path), KEY_FILE_CAP, where, "a public key file")
        keys.append(sg.load_public_key(data, where))
    return keys


#: Loaders of the trust kinds beside keys and keyless (kind name -> parsed rules -> material, files
#: read); a kind without a loader keeps its parsed rules as they are.
TRUST_LOADERS: dict[str, Callable[[Any], Any]] = {}
#: Checkers of signature referrers other than cosign's and sigstore's, by artifact type: called with
#: (repository, referrer manifest, subject digest, trust, where) and returning (where, verdict) pairs.
#: The gate has read the referrer manifest (by digest) and checked that its subject is the image, and
#: that the subject descriptor's media type and size are the image's when it knows them.
REFERRER_CHECKERS: dict[str, Callable[[Any, Any, str, sg.Trust, str], list[tuple[str, sg.Verdict]]]] = {}

TRUST_LOADERS[notation.NOTATION] = notation.load_trust
REFERRER_CHECKERS[notation.SIGNATURE_ARTIFACT] = notation.check_referrer


def load_trust(policy: VerifyPolicy) -> sg.Trust:
    """The policy's keys, keyless rules with their trusted root, and other trust kinds; files read once."""
    keyless = policy.keyless
    trust_keyless = None
    if keyless is not None:
        trust_keyless = sg.KeylessTrust(keyless.rules, load_trusted_root(keyless.trusted_root))
    others = {kind: TRUST_LOADERS.get(kind, _as_parsed)(rules) for kind, rules in policy.trust.items()
              if kind != "keyless"}
    return sg.Trust(tuple(load_keys(policy)), trust_keyless, others)


def _as_parsed(rules: Any) -> Any:
    return rules


def load_trusted_root(path: str | None) -> kl.TrustedRoot:
    """The trusted root at ``path``, or Sigstore's public-good root shipped with the collection."""
    _require_keyless_cryptography()
    if path is None:
        return kl.load_trusted_root(PUBLIC_GOOD_TRUSTED_ROOT, "the shipped Sigstore public-good trusted root")
    where = f"verify.trusted_root ({path})"
    return kl.load_trusted_root(read_trust_file(path, kl.ROOT_FILE_CAP, where, "a trusted root"), where)


def _require_keyless_cryptography() -> None:
    if sg.CRYPTOGRAPHY_IMPORT_ERROR is not None:
        raise InvalidInputError("verify.keyless needs the Python package cryptography (42 or newer) on the host "
                                "that runs the module: install it there")
    import cryptography
    found = tuple(int(part) for part in cryptography.__version__.split(".")[:2] if part.isdigit())
    if found < _KEYLESS_CRYPTOGRAPHY:
        raise InvalidInputError(f"verify.keyless needs cryptography 42 or newer on the host that runs the module; "
                                f"it has {cryptography.__version__}: upgrade it there")


def make_verifier(value: Any) -> Callable[..., dict[str, Any]] | None:
    """The gate the ``verify`` option asks for, as one call ``(repository, digest, already=None) -> verified``;
    None when unset (``already``: an :class:`AlreadyRead`).

    The option is parsed and the keys and trusted root are read once, here, so bad input fails
    before any request and a mirror does not read the files once per tag.
    """
    policy = parse_verify(value)
    if policy is None:
        return None
    trust = load_trust(policy)

    def verify(repo: Any, digest: str, already: AlreadyRead | None = None) -> dict[str, Any]:
        return verify_image(repo, digest, policy, trust, already)
    return verify


def verify_image(repo: Repository, subject: Manifest | str, policy: VerifyPolicy,
                 keys: sg.Trust | Sequence[sg.PublicKey] | None = None,
                 already: AlreadyRead | None = None) -> dict[str, Any]:
    """Check ``subject`` (a manifest already read, or a digest) in ``repo`` against ``policy``.

    Returns what was verified::

        {"digest": D, "index": "self", "verified": [
            {"digest": D_or_child,
             "signatures": [{"kind": "signature", "key": "sha256:<fingerprint>", "algorithm": "ecdsa-secp256r1",
                             "source": "tag_scheme" | "referrer", "manifest": sig manifest digest,
                             "predicate_type": None | "...",
                             # keyless signatures (key and algorithm None):
                             "identity": SAN, "issuer": OIDC issuer, "log_index": N,
                             "signed_at": "2026-01-02T03:04:05Z"},
                            # another trust kind adds what its proof says, e.g. Notation:
                            {"kind": "notation", "envelope": "jws" | "cose", "algorithm": "ES384",
                             "identity": subject DN, "issuer": issuer DN, "trust_anchor": root DN,
                             "certificate": "sha256:<signing certificate>", "signing_scheme": "notary.x509",
                             "signing_time": "...", "expiry": None | "...", "source": "referrer", ...}],
             "referrers": [{"artifact_type": T, "digest": referrer digest, "signed_by": fingerprint | None}]}]}

    Raises :class:`VerificationError` (one line: which requirement failed for which digest) at the
    first digest that does not meet the policy, :class:`InvalidInputError` for unusable keys.
    ``keys`` is what :func:`load_trust` gives (a plain key list is accepted too); ``already`` what the
    caller read of ``repo`` already (:class:`AlreadyRead`), which is not read again.
    """
    keys = load_trust(policy) if keys is None else sg.as_trust(keys)
    already = already or NOTHING_READ
    image = already.images.get(subject) if isinstance(subject, str) else None
    if image is not None and not is_index_type(image.media_type):
        # An image is its own only target, and its descriptor is all the check needs of its manifest.
        return {"digest": subject, "index": policy.index,
                "verified": [_verify_digest(repo, image.digest, policy, keys, image, already)]}
    manifest = repo.fetch_manifest(subject) if isinstance(subject, str) else subject
    targets = [manifest.digest] if policy.index in ("self", "both") or not manifest.is_index else []
    if manifest.is_index and policy.index in ("children", "both"):
        children = [child.digest for child in manifest.manifests if not _is_attestation_child(child)]
        if not children:
            raise VerificationError(f"verify: {_display(repo, manifest.digest)} is an index without image children, "
                                    "so verify.index=children checks nothing; use index: self")
        targets.extend(dict.fromkeys(children))
    # What the manifest and the index (both hashed) say of each target: a referrer's subject must agree.
    known = {manifest.digest: manifest.descriptor(), **{child.digest: child for child in manifest.manifests}}
    verified = [_verify_digest(repo, digest, policy, keys, known.get(digest), already) for digest in targets]
    return {"digest": manifest.digest, "index": policy.index, "verified": verified}


def find_signatures(repo: Repository, digest: str, keys: sg.Trust | Sequence[sg.PublicKey],
                    referrers: Sequence[Descriptor] | None = None, subject: Descriptor | None = None,
                    already: AlreadyRead | None = None) -> list[_Found]:
    """Every signature and attestation of ``digest`` in ``repo``, each with its verdict.

    ``referrers`` is the subject's referrer list when the caller already read it; ``subject`` the
    image's descriptor when the caller read it from a hashed manifest (a referrer whose subject
    descriptor says another media type or size is then refused before another kind's checker sees it);
    ``already`` what else the caller read (the tag list spares a read of a cosign tag that is not there).
    """
    keys = sg.as_trust(keys)
    already = already or NOTHING_READ
    found: list[_Found] = []
    for suffix in ("sig", "att") if _reads_cosign_tags(keys) else ():
        tag = cosign_tag(digest, suffix)
        reference = tag if tag is None or already.tags is None else already.tags.get(tag)
        if tag is None or reference is None:
            continue
        try:
            manifest = repo.fetch_manifest(reference)
        except NotFoundError:
            continue
        found.extend(_check_layers(repo, manifest, digest, keys, TAG_SCHEME, f"tag {tag}"))
    if referrers is None:
        referrers = _referrers_of(repo, digest, already)
    for descriptor in referrers[:MAX_REFERRERS]:
        other = REFERRER_CHECKERS.get(descriptor.artifact_type or "")
        if other is None and not (sg.is_bundle_media_type(descriptor.artifact_type)
                                  or descriptor.artifact_type == sg.COSIGN_SIG_ARTIFACT):
            continue
        where = f"referrer {descriptor.digest}"
        fetched = referrer_manifest(repo, descriptor.digest)
        if isinstance(fetched, str):
            found.append(_Found(REFERRER, descriptor.digest, where, sg.Verdict(None, reason=fetched)))
            continue
        # Another kind's checker compares its payload with the subject descriptor: it must be the image's.
        refused = _not_about(fetched, digest, subject if other else None)
        if refused is not None:
            found.append(_Found(REFERRER, descriptor.digest, where, sg.Verdict(None, reason=refused)))
        elif other is not None:
            found.extend(_Found(REFERRER, descriptor.digest, place, verdict)
                         for place, verdict in other(repo, fetched, digest, keys, where))
        else:
            found.extend(_check_layers(repo, fetched, digest, keys, REFERRER, where))
    return found


def _referrers_of(repo: Repository, digest: str, already: AlreadyRead) -> Sequence[Descriptor]:
    listed = already.referrers.get(digest)
    return repo.referrers(digest) if listed is None else listed


def _reads_cosign_tags(trust: sg.Trust) -> bool:
    # Only a key or a keyless rule can accept what cosign's tags hold (another kind has no tags).
    return bool(trust.keys) or trust.keyless is not None or not trust.others


def _not_about(manifest: Manifest, digest: str, subject: Descriptor | None) -> str | None:
    """Why the referrer ``manifest`` is no signature of ``digest``; None when it may be one."""
    if manifest.is_index or manifest.is_schema1:
        return "not a signature manifest"
    named = manifest.subject
    if named is None or named.digest != digest:
        return f"its subject is {named.digest if named is not None else 'no subject'}"
    if subject is not None and (named.media_type, named.size) != (subject.media_type, subject.size):
        return (f"its subject descriptor says {named.media_type}, {named.size} bytes; the image is "
                f"{subject.media_type}, {subject.size} bytes")
    return None


def _verify_digest(repo: Repository, digest: str, policy: VerifyPolicy, keys: sg.Trust,
                   subject: Descriptor | None = None, already: AlreadyRead = NOTHING_READ) -> dict[str, Any]:
    display = _display(repo, digest)
    referrers = _referrers_of(repo, digest, already)
    found = find_signatures(repo, digest, keys, referrers, subject, already) if policy.require else []
    accepted = [item for item in found if item.verdict.ok]
    for kind in policy.require:
        matching = [item for item in accepted if item.verdict.kind == kind]
        if kind == sg.SIGNATURE and policy.annotations:
            if matching and not any(sg.annotations_match(item.verdict, policy.annotations) for item in matching):
                wanted = ", ".join(f"{k}={v}" for k, v in policy.annotations.items())
                raise VerificationError(f"verify: {display} has valid signatures, but none carries the "
                                        f"annotations {wanted}")
            matching = [item for item in matching if sg.annotations_match(item.verdict, policy.annotations)]
        if not matching:
            raise VerificationError(_missing(kind, display, digest, found, keys, _reads_cosign_tags(keys)))
    return {
        "digest": digest,
        "signatures": [_signature_result(item) for item in accepted],
        "referrers": [item for requirement in policy.referrers
                      for item in _check_referrers(repo, display, referrers, requirement, keys, already)],
    }


def _check_referrers(repo: Repository, display: str, referrers: Sequence[Descriptor], requirement: Any,
                     keys: sg.Trust, already: AlreadyRead = NOTHING_READ) -> list[dict[str, Any]]:
    attached = [d for d in referrers if d.artifact_type == requirement.artifact_type][:MAX_REFERRERS]
    if not attached:
        raise VerificationError(f"verify: {display} has no referrer of artifact type {requirement.artifact_type}")
    results = []
    reasons = []
    for descriptor in attached:
        signed_by = None
        if requirement.signed:
            found = find_signatures(repo, descriptor.digest, keys, subject=descriptor, already=already)
            good = [item for item in found if item.verdict.ok and item.verdict.kind == sg.SIGNATURE]
            if not good:
                rejected = [item for item in found if not item.verdict.ok]
                reasons.append(f"{descriptor.digest}: " + (_reasons(rejected) if rejected else "no signature"))
                continue
            signed_by = _signer(good[0].verdict)
        results.append({"artifact_type": requirement.artifact_type, "digest": descriptor.digest,
                        "signed_by": signed_by})
    if not results:
        raise VerificationError(f"verify: no {requirement.artifact_type} referrer of {display} is signed by "
                                f"{keys.nobody()} ({_join(reasons)})")
    return results


def _check_layers(repo: Repository, manifest: Manifest, digest: str, keys: sg.Trust,
                  source: str, where: str) -> list[_Found]:
    if manifest.is_index or manifest.is_schema1:  # a referrer's was refused by _not_about
        return [_Found(source, manifest.digest, where, sg.Verdict(None, reason="not a signature manifest"))]
    found = []
    for position, layer in enumerate(manifest.layers[:MAX_SIGNATURE_LAYERS], start=1):
        place = f"{where} layer {position}"
        media_type = layer.media_type
        if media_type == sg.SIMPLE_SIGNING:
            check, cap = _simple_signing(layer), PAYLOAD_CAP
        elif media_type == sg.DSSE_ENVELOPE:
            check, cap = _envelope(layer), ENVELOPE_CAP
        elif sg.is_bundle_media_type(media_type):
            check, cap = sg.verify_bundle, ENVELOPE_CAP
        else:
            continue  # cosign's .sbom and other attachments: no signature in them
        data = signature_blob(repo, layer, cap)
        verdict = sg.Verdict(None, reason=data) if isinstance(data, str) else check(data, keys, digest)
        found.append(_Found(source, manifest.digest, place, verdict))
    return found


def _simple_signing(layer: Descriptor) -> Any:
    signature = layer.annotations.get(sg.SIGNATURE_ANNOTATION)

    def check(data: bytes, keys: sg.Trust, digest: str) -> sg.Verdict:
        return sg.verify_simple_signing(data, signature, keys, digest, layer.annotations)
    return check


def _envelope(layer: Descriptor) -> Any:
    def check(data: bytes, keys: sg.Trust, digest: str) -> sg.Verdict:
        return sg.verify_envelope_blob(data, keys, digest, layer.annotations)
    return check


def _display(repo: Any, digest: str) -> str:
    """``team/app@sha256:…``; a local layout names its path (its repository may be unnamed)."""
    return repo.where(digest) if getattr(repo, "local", False) else f"{repo.name}@{digest}"


def _is_attestation_child(child: Descriptor) -> bool:
    key, value = _ATTESTATION_CHILD
    return child.annotations.get(key) == value


def _signer(verdict: sg.Verdict) -> str | None:
    """Who made an accepted signature: the key fingerprint, or the keyless identity."""
    if verdict.key is not None:
        return verdict.key.fingerprint
    if verdict.keyless is not None:
        return verdict.keyless.identity
    return str(verdict.proof.get("identity")) if verdict.proof and verdict.proof.get("identity") else None


def _signature_result(item: _Found) -> dict[str, Any]:
    key = item.verdict.key
    result: dict[str, Any] = {
        "kind": item.verdict.kind, "key": key.fingerprint if key else None,
        "algorithm": key.algorithm if key else None, "source": item.source, "manifest": item.manifest,
        "predicate_type": item.verdict.predicate_type}
    proof = item.verdict.keyless
    if proof is not None:
        result.update({"identity": proof.identity, "issuer": proof.issuer, "log_index": proof.log_index,
                       "signed_at": proof.signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    result.update(item.verdict.proof or {})
    return result


def _missing(kind: str, display: str, digest: str, found: Sequence[_Found], trust: sg.Trust,
             tags_read: bool = True) -> str:
    # Valid signatures of the other kind are no failed attempts at this one: leave them out.
    rejected = [item for item in found if not item.verdict.ok]
    if not rejected:
        tag = cosign_tag(digest, "sig" if kind == sg.SIGNATURE else "att") if tags_read else None
        places = ([f"no {tag} tag"] if tag else []) + [f"no {kind} referrer"]
        return f"verify: {display} has no {kind} ({', '.join(places)})"
    return f"verify: {display} has no valid {kind} by {trust.nobody()} ({_reasons(rejected)})"


def _reasons(found: Sequence[_Found]) -> str:
    return _join([f"{item.where}: {item.verdict.reason}" for item in found])


def _join(reasons: Sequence[str], limit: int = 3) -> str:
    shown = "; ".join(reasons[:limit])
    return shown + (f"; and {len(reasons) - limit} more" if len(reasons) > limit else "")
