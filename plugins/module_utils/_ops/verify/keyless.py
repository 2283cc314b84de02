# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Keyless (Sigstore) signatures: a Fulcio certificate, a transparency-log entry, an identity (pure, offline).

A keyless signature is made with a short-lived key whose certificate Fulcio issued for an OIDC
identity (an email, a CI workflow URI) and logged in a CT log; the signature is recorded in the
Rekor transparency log, which returns a signed entry timestamp (SET) and, newer, an inclusion proof.
:func:`verify_keyless` accepts one only when all of these hold, against a :class:`TrustedRoot`
(Sigstore's ``trusted_root.json`` format) and nothing fetched:

1. the signature verifies with the certificate's key over the signed bytes (or their prehash);
2. the log entry is about this very signature: its body names the hash of the signed bytes, the
   signature and the certificate (``hashedrekord`` and ``dsse`` entries);
3. the entry's SET verifies with a transparency-log key of the root valid at the entry's time,
   and its inclusion proof (when the entry carries one) leads to the root hash of a checkpoint
   signed by that same log; the entry's integrated time is the signing time;
4. the certificate was valid at the signing time, is for code signing, and chains through one of
   the root's certificate authorities (valid then) to its self-signed root; only the root's own
   chain is used, never certificates that came with the signature;
5. one of the certificate's embedded SCTs verifies with a CT log key of the root;
6. the certificate's identity (its SAN: email or URI) and OIDC issuer satisfy one of the rules.

What the signed content says (the digest it names) is the caller's check, as for keys.
Only ``cryptography`` is used: the collection already needs it, and these are a handful of
well-specified checks over its primitives (see the README for why not sigstore-python).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    KeylessRule,
)

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from cryptography.x509.oid import ExtendedKeyUsageOID
except ImportError:  # pragma: no cover - reported by signatures.load_public_key's twin below
    pass

#: Fulcio's OIDC issuer extensions: v1 holds the raw text, v2 a DER UTF8String.
OID_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
OID_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
#: cosign's tag-scheme annotations beside the signature on a ``.sig`` layer.
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
#: A trusted root file is a few KiB (the public-good one about 7).
ROOT_FILE_CAP = 1024 * 1024


class KeylessError(ValueError):
    """A keyless signature is refused; the text says which check failed."""


# -- the trusted root --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Window:
    """When the root trusts an entry (``validFor``): from ``start``, until ``end`` if it has one."""

    start: datetime
    end: datetime | None

    def valid_at(self, when: datetime) -> bool:
        return self.start <= when and (self.end is None or when <= self.end)


@dataclass(frozen=True)
class Authority:
    """A certificate authority of the root: its chain (issuing certificate first) and its window."""

    chain: tuple[Any, ...]
    window: _Window


@dataclass(frozen=True)
class LogKey:
    """A transparency-log or CT-log key of the root and its window."""

    key: Any
    log_id: bytes
    url: str
    window: _Window


@dataclass(frozen=True)
class TrustedRoot:
    """Sigstore's trust material: Fulcio CAs, Rekor keys, CT log keys (``trusted_root.json``)."""

    authorities: tuple[Authority, ...]
    tlogs: Mapping[bytes, LogKey]
    ctlogs: Mapping[bytes, LogKey]
    name: str


def load_trusted_root(data: bytes | str, where: str) -> TrustedRoot:
    """Parse a ``trusted_root.json`` (media type ``application/vnd.dev.sigstore.trustedroot+json``)."""
    try:
        document = json.loads(data)
    except ValueError:
        raise InvalidInputError(f"{where} is not JSON; it must be a Sigstore trusted_root.json") from None
    if not isinstance(document, dict) or "trustedroot" not in str(document.get("mediaType", "")):
        raise InvalidInputError(f"{where} is not a Sigstore trusted root (its mediaType must be "
                                "application/vnd.dev.sigstore.trustedroot+json)")
    try:
        authorities = tuple(_authority(entry) for entry in document.get("certificateAuthorities") or [])
        tlogs = {log.log_id: log for log in (_log_key(entry) for entry in document.get("tlogs") or [])}
        ctlogs = {log.log_id: log for log in (_log_key(entry) for entry in document.get("ctlogs") or [])}
    except (KeyError, TypeError, ValueError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise InvalidInputError(f"{where} is not a usable Sigstore trusted root ({_brief(exc)})") from None
    if not authorities or not tlogs or not ctlogs:
        raise InvalidInputError(f"{where} lacks certificate authorities, transparency logs or CT logs; "
                                "keyless verification needs all three")
    return TrustedRoot(authorities, tlogs, ctlogs, where)


def _brief(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _when(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError("a validFor time is missing")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def _valid_for(entry: Mapping[str, Any]) -> _Window:
    valid = entry["validFor"]
    end = valid.get("end")
    return _Window(_when(valid["start"]), _when(end) if end else None)


def _authority(entry: Mapping[str, Any]) -> Authority:
    certificates = entry["certChain"]["certificates"]
    chain = tuple(x509.load_der_x509_certificate(base64.b64decode(item["rawBytes"])) for item in certificates)
    if not chain:
        raise ValueError("a certificate authority has an empty chain")
    return Authority(chain, _valid_for(entry))


def _log_key(entry: Mapping[str, Any]) -> LogKey:
    public = entry["publicKey"]
    key = serialization.load_der_public_key(base64.b64decode(public["rawBytes"]))
    return LogKey(key, base64.b64decode(entry["logId"]["keyId"]), str(entry.get("baseUrl", "")), _valid_for(public))


# -- what a signature brings -------------------------------------------------------------------
@dataclass(frozen=True)
class InclusionProof:
    """A Merkle audit path from an entry to a checkpoint's root hash (RFC 9162)."""

    index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str


@dataclass(frozen=True)
class LogEntry:
    """A transparency-log entry as it travels with a signature."""

    log_index: int
    log_id: bytes
    integrated_time: int
    body: bytes
    signed_entry_timestamp: bytes | None
    proof: InclusionProof | None = None


@dataclass(frozen=True)
class KeylessProof:
    """What a verified keyless signature proves: who, per which issuer, logged where and when."""

    identity: str
    issuer: str
    log_index: int
    signed_at: datetime


def cosign_log_entry(annotation: Any) -> LogEntry:
    """The log entry of cosign's ``dev.sigstore.cosign/bundle`` layer annotation (SET only)."""
    if not isinstance(annotation, str) or not annotation:
        raise KeylessError(f"no transparency-log entry (no {BUNDLE_ANNOTATION} annotation)")
    try:
        document = json.loads(annotation)
        payload = document["Payload"]
        return LogEntry(int(payload["logIndex"]), bytes.fromhex(payload["logID"]), int(payload["integratedTime"]),
                        base64.b64decode(payload["body"], validate=True),
                        base64.b64decode(document["SignedEntryTimestamp"], validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise KeylessError(f"the {BUNDLE_ANNOTATION} annotation is not a Rekor bundle") from None


def bundle_log_entry(entry: Any) -> LogEntry:
    """A sigstore bundle's ``tlogEntries`` item."""
    try:
        promise = entry.get("inclusionPromise") or {}
        proof = entry.get("inclusionProof")
        return LogEntry(
            int(entry["logIndex"]), base64.b64decode(entry["logId"]["keyId"]), int(entry["integratedTime"]),
            base64.b64decode(entry["canonicalizedBody"], validate=True),
            base64.b64decode(promise["signedEntryTimestamp"]) if promise.get("signedEntryTimestamp") else None,
            InclusionProof(int(proof["logIndex"]), int(proof["treeSize"]), base64.b64decode(proof["rootHash"]),
                           tuple(base64.b64decode(item) for item in proof.get("hashes") or []),
                           str(proof["checkpoint"]["envelope"])) if isinstance(proof, dict) else None)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise KeylessError("the bundle's transparency-log entry is malformed") from None


def load_certificate(data: bytes, pem: bool) -> Any:
    """One X.509 certificate (PEM or DER); :class:`KeylessError` when it is none."""
    try:
        return x509.load_pem_x509_certificate(data) if pem else x509.load_der_x509_certificate(data)
    except ValueError:
        raise KeylessError("the signing certificate cannot be read") from None


# -- verification ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signed:
    """What was signed: the bytes themselves, or (``prehashed``) their SHA-256 digest."""

    data: bytes
    prehashed: bool = False

    @property
    def sha256(self) -> bytes:
        return self.data if self.prehashed else hashlib.sha256(self.data).digest()


def verify_keyless(certificate: Any, signature: bytes, signed: Signed, entry: LogEntry, root: TrustedRoot,
                   rules: Sequence[KeylessRule], payload_hash: bytes | None = None) -> KeylessProof:
    """Check a keyless signature (see the module text for what holds); :class:`KeylessError` says what did not.

    ``payload_hash`` is the SHA-256 of a DSSE payload, which a ``dsse`` log entry names instead of
    the signed bytes (the pre-authentication encoding).
    """
    try:
        return _verify_keyless(certificate, signature, signed, entry, root, rules, payload_hash)
    except KeylessError:
        raise
    except (ValueError, TypeError, OverflowError, OSError, UnsupportedAlgorithm) as exc:
        # cryptography parses extensions lazily, and a hostile entry may carry any number: whatever
        # cannot be read is a refusal, never a traceback.
        raise KeylessError(f"its certificate or log entry cannot be read ({type(exc).__name__})") from None


def _verify_keyless(certificate: Any, signature: bytes, signed: Signed, entry: LogEntry, root: TrustedRoot,
                    rules: Sequence[KeylessRule], payload_hash: bytes | None) -> KeylessProof:
    if not _verifies(certificate.public_key(), signature, signed):
        raise KeylessError("the signature does not verify with its certificate's key")
    _entry_matches(entry, certificate, signature, signed, payload_hash)
    log = root.tlogs.get(entry.log_id)
    signed_at = datetime.fromtimestamp(entry.integrated_time, timezone.utc)
    if log is None:
        raise KeylessError(f"its log entry is from a transparency log not in the trusted root ({entry.log_id.hex()[:16]}…)")
    if not log.window.valid_at(signed_at):
        raise KeylessError(f"the trusted root does not trust log {log.url or entry.log_id.hex()[:16]} at {_iso(signed_at)}")
    _check_set(entry, log)
    if entry.proof is not None:
        _check_inclusion(entry, log)
    issuing = _check_chain(certificate, root, signed_at)
    _check_sct(certificate, issuing, root)
    identity, issuer = certificate_identity(certificate)
    if not any(rule.matches(identity, issuer) for rule in rules):
        wanted = "; ".join(rule.describe() for rule in rules[:3])
        # cosign matches its regexes anywhere in the text; ours must match all of it, and a user coming
        # from cosign would otherwise read "signed by ...release.yml..., not by /release\.yml/" as a contradiction.
        partial = any(rule.identity_regex is not None and re.search(rule.identity_regex, identity)
                      for rule in rules)
        hint = "; identity_regex must match the whole identity (write .* around it to match a part)" if partial else ""
        raise KeylessError(f"signed by {identity} (issuer {issuer}), not by {wanted}{hint}")
    return KeylessProof(identity, issuer, entry.log_index, signed_at)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash_for(key: Any) -> Any:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}.get(key.curve.name, hashes.SHA256())
    return hashes.SHA256()


def _verifies(key: Any, signature: bytes, signed: Signed) -> bool:
    try:
        if signed.prehashed:
            chosen: Any = Prehashed(hashes.SHA256())
        else:
            chosen = _hash_for(key)
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed.data, ec.ECDSA(chosen))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed.data, padding.PKCS1v15(), chosen)
        elif isinstance(key, ed25519.Ed25519PublicKey) and not signed.prehashed:
            key.verify(signature, signed.data)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _entry_matches(entry: LogEntry, certificate: Any, signature: bytes, signed: Signed,
                   payload_hash: bytes | None) -> None:
    """The log entry's body must be about this signature, this certificate and these bytes."""
    try:
        body = json.loads(entry.body)
        kind, spec = body["kind"], body["spec"]
        if kind == "hashedrekord":
            named_hash = spec["data"]["hash"]
            pairs = [(spec["signature"]["content"], spec["signature"]["publicKey"]["content"])]
            wanted = signed.sha256
        elif kind == "dsse":
            named_hash = spec["payloadHash"]
            pairs = [(item["signature"], item["verifier"]) for item in spec["signatures"]]
            if payload_hash is None:
                raise KeylessError("its log entry is a dsse entry, but the signature is not a DSSE envelope")
            wanted = payload_hash
        else:
            raise KeylessError(f"its log entry is of kind {kind!r}; hashedrekord and dsse entries are understood")
        if named_hash.get("algorithm") != "sha256" or bytes.fromhex(named_hash["value"]) != wanted:
            raise KeylessError("its log entry is for another payload")
        der = certificate.public_bytes(serialization.Encoding.DER)
        for logged_signature, verifier in pairs:
            logged_cert = x509.load_pem_x509_certificate(base64.b64decode(verifier))
            if (base64.b64decode(logged_signature) == signature
                    and logged_cert.public_bytes(serialization.Encoding.DER) == der):
                return
    except KeylessError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise KeylessError("its log entry's body cannot be read") from None
    raise KeylessError("its log entry is for another signature or certificate")


def _check_set(entry: LogEntry, log: LogKey) -> None:
    if entry.signed_entry_timestamp is None:
        raise KeylessError("its log entry has no signed entry timestamp, so its time is unproven "
                           "(RFC 3161 timestamps are not supported)")
    message = json.dumps({"body": base64.b64encode(entry.body).decode(), "integratedTime": entry.integrated_time,
                          "logID": entry.log_id.hex(), "logIndex": entry.log_index},
                         sort_keys=True, separators=(",", ":")).encode()
    if not _verifies(log.key, entry.signed_entry_timestamp, Signed(message)):
        raise KeylessError("its log entry's signed entry timestamp does not verify (tampered or another log)")


def merkle_root(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root an inclusion proof leads to (RFC 9162 2.1.3.2), None when the proof cannot hold."""
    if index < 0 or index >= size:
        return None
    fn, sn, result = index, size - 1, leaf
    for node in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            result = hashlib.sha256(b"\x01" + node + result).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = hashlib.sha256(b"\x01" + result + node).digest()
        fn >>= 1
        sn >>= 1
    return result if sn == 0 else None


def _check_inclusion(entry: LogEntry, log: LogKey) -> None:
    proof = entry.proof
    if proof is None:
        raise AssertionError("an entry with an inclusion proof was asked for")
    leaf = hashlib.sha256(b"\x00" + entry.body).digest()
    if merkle_root(proof.index, proof.tree_size, leaf, proof.hashes) != proof.root_hash:
        raise KeylessError("its inclusion proof does not lead to the logged root hash")
    body, _sep, signatures = proof.checkpoint.partition("\n\n")
    lines = body.split("\n")
    try:
        size, root_hash = int(lines[1]), base64.b64decode(lines[2])
    except (IndexError, ValueError, binascii.Error):
        raise KeylessError("its inclusion proof's checkpoint is malformed") from None
    if size != proof.tree_size or root_hash != proof.root_hash:
        raise KeylessError("its inclusion proof's checkpoint is for another tree")
    note = (body + "\n").encode()
    for line in signatures.split("\n"):
        # "— <key name> <base64 of key hint + signature>" (a signed note's signature line)
        parts = line.split(" ")
        if len(parts) < 3 or parts[0] != "\u2014":
            continue
        try:
            raw = base64.b64decode(parts[-1])
        except (ValueError, binascii.Error):
            continue
        if raw[:4] == log.log_id[:4] and _verifies(log.key, raw[4:], Signed(note)):
            return
    raise KeylessError("its inclusion proof's checkpoint is not signed by the log")


def _check_chain(certificate: Any, root: TrustedRoot, signed_at: datetime) -> Any:
    """The issuing certificate of the root chain ``certificate`` chains through; refuses otherwise."""
    if not certificate.not_valid_before_utc <= signed_at <= certificate.not_valid_after_utc:
        raise KeylessError(f"its certificate was not valid when it was logged ({_iso(signed_at)}; valid "
                           f"{_iso(certificate.not_valid_before_utc)} to {_iso(certificate.not_valid_after_utc)})")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = []
    try:
        signing = certificate.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    except x509.ExtensionNotFound:
        signing = False
    if ExtendedKeyUsageOID.CODE_SIGNING not in usage or not signing:
        raise KeylessError("its certificate is not for code signing")
    for authority in root.authorities:
        if authority.window.valid_at(signed_at) and _chains(certificate, authority.chain, signed_at):
            return authority.chain[0]
    raise KeylessError("its certificate does not chain to a certificate authority of the trusted root "
                       f"valid at {_iso(signed_at)}")


def _chains(certificate: Any, chain: Sequence[Any], signed_at: datetime) -> bool:
    current = certificate
    for issuer in chain:
        if not _issued_by(current, issuer):
            return False
        if not issuer.not_valid_before_utc <= signed_at <= issuer.not_valid_after_utc:
            return False
        try:
            if not issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                return False
        except x509.ExtensionNotFound:
            return False
        current = issuer
    return _issued_by(current, current)  # the chain ends at a self-signed root


def _issued_by(certificate: Any, issuer: Any) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_sct(certificate: Any, issuing: Any, root: TrustedRoot) -> None:
    try:
        scts = certificate.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        raise KeylessError("its certificate carries no SCT (certificate transparency proof)") from None
    issuer_key_hash = hashlib.sha256(issuing.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()
    tbs = certificate.tbs_precertificate_bytes
    for sct in scts:
        log = root.ctlogs.get(sct.log_id)
        if log is None or not log.window.valid_at(sct.timestamp.replace(tzinfo=timezone.utc)):
            continue
        millis = int(sct.timestamp.replace(tzinfo=timezone.utc).timestamp() * 1000)
        extensions = sct.extension_bytes
        message = (b"\x00\x00" + millis.to_bytes(8, "big") + b"\x00\x01" + issuer_key_hash
                   + len(tbs).to_bytes(3, "big") + tbs + len(extensions).to_bytes(2, "big") + extensions)
        if _verifies(log.key, sct.signature, Signed(message)):
            return
    raise KeylessError("no SCT of its certificate verifies with a CT log key of the trusted root")


def certificate_identity(certificate: Any) -> tuple[str, str]:
    """A Fulcio certificate's identity (its SAN: email or URI) and OIDC issuer."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise KeylessError("its certificate names no identity (no subject alternative name)") from None
    found = names.get_values_for_type(x509.RFC822Name) + names.get_values_for_type(x509.UniformResourceIdentifier)
    if not found:
        raise KeylessError("its certificate's identity is neither an email nor a URI")
    issuer = None
    for extension in certificate.extensions:
        oid = extension.oid.dotted_string
        if oid == OID_ISSUER_V2:
            issuer = _der_utf8(extension.value.value)
            break
        if oid == OID_ISSUER_V1:
            issuer = extension.value.value.decode("utf-8", "replace")
    if not issuer:
        raise KeylessError("its certificate names no OIDC issuer")
    return found[0], issuer


def _der_utf8(data: bytes) -> str:
    # A DER UTF8String: tag 0x0c, a short or long length, the text.
    if len(data) < 2 or data[0] != 0x0C:
        return ""
    length, offset = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(data[2:2 + count], "big"), 2 + count
    return data[offset:offset + length].decode("utf-8", "replace")
