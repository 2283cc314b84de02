# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Notation (Notary Project) signatures: what they say, and whether a trust store and policy accept them.

A Notation signature is an OCI 1.1 referrer of artifact type ``application/vnd.cncf.notary.signature``
(older notation: that type as the config media type) whose one layer is a signature envelope:
JWS JSON (``application/jose+json``) or COSE_Sign1 (``application/cose``). Both carry the same
things (Notary Project specifications v1.1: signature-specification, signature-envelope-jws/-cose,
trust-store-trust-policy): a payload ``{"targetArtifact": descriptor}``, protected headers
(``alg``, ``crit``, content type, ``io.cncf.notary.signingScheme``, ``signingTime``, ``expiry``)
and, unprotected, the certificate chain (``x5c`` / label 33), leaf first, ending at a root.

A signature is accepted here, following the spec's verification steps at level ``strict``, when:

- **integrity**: the envelope parses; the content type is the Notary payload; ``alg`` is one of
  PS256/384/512 or ES256/384/512 and is exactly what the signing certificate's key calls for;
  the signature verifies with that key; the payload's ``targetArtifact`` names the digest being
  verified (and its media type and size, when those are known);
- **critical headers**: ``crit`` lists ``signingScheme`` and every present ``expiry`` /
  ``authenticSigningTime``, and names nothing this verifier does not process (a critical
  extended attribute or a verification plugin is refused, never ignored);
- **authenticity**: the chain in the envelope is complete and ordered (each certificate signed
  by the next, the last self-signed), meets the certificate requirements (CA: critical basic
  constraints with cA and path length, critical keyUsage keyCertSign; leaf: critical keyUsage
  digitalSignature and no encipherment/CA bits, no serverAuth/clientAuth/emailProtection/
  timeStamping/any EKU; RSA >= 2048, EC >= 256 bits; no SHA-1 signatures), and one of its
  certificates is in the trust store; the leaf's subject matches a trusted identity (or ``*``);
- **signing scheme** ``notary.x509`` (``notary.x509.signingAuthority`` needs a signing-authority
  trust store, which is not offered);
- **time**: every certificate of the chain was valid at the signing time the envelope states,
  and, since no authentic timestamp is verified (RFC 3161 countersignatures need a TSA trust
  store, which is not offered), is valid now, as the spec requires without one;
- **expiry**: the signer's ``expiry``, when present, has not passed.

Revocation (OCSP, CRL) is not checked: it needs the network at verify time, and this gate is
offline. The trust policy's registry scope is checked by :func:`.gate.verify_notation` against the
repository being verified.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation import (
    cbor,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.spec import (
    NOTATION,
    NotationPolicy,
)

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as exc:  # pragma: no cover - ansible-core depends on cryptography
    CRYPTOGRAPHY_IMPORT_ERROR: ImportError | None = exc
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

SIGNATURE_ARTIFACT = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
COSE = "application/cose"
PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
SCHEME_X509 = "notary.x509"
SCHEME_SIGNING_AUTHORITY = "notary.x509.signingAuthority"
_H = "io.cncf.notary."
SIGNING_SCHEME, SIGNING_TIME, AUTHENTIC_TIME, EXPIRY = (
    _H + "signingScheme", _H + "signingTime", _H + "authenticSigningTime", _H + "expiry")
VERIFICATION_PLUGIN = _H + "verificationPlugin"
#: Critical headers this verifier processes; anything else marked critical refuses the signature.
_UNDERSTOOD_CRITICAL = frozenset({SIGNING_SCHEME, AUTHENTIC_TIME, EXPIRY})

#: alg -> hash; which key each alg needs is in :func:`check_algorithm` (the spec's table).
_JWS_ALGORITHMS = {"PS256": "sha256", "PS384": "sha384", "PS512": "sha512",
                   "ES256": "sha256", "ES384": "sha384", "ES512": "sha512"}
_COSE_ALGORITHMS = {-37: "PS256", -38: "PS384", -39: "PS512", -7: "ES256", -35: "ES384", -36: "ES512"}
_COSE_ALG, _COSE_CRIT, _COSE_CTY, _COSE_X5CHAIN = 1, 2, 3, 33
_COSE_SIGN1_TAG, _COSE_DATE_TAG = 18, 1


class EnvelopeError(ValueError):
    """A signature envelope is malformed or breaks a rule of the spec (the text says which)."""


# -- envelopes -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Envelope:
    """What a JWS or COSE envelope says, before anything in it is trusted."""

    format: str  # "jws" or "cose"
    algorithm: str  # the JWS spelling (PS256 ...), for both formats
    headers: Mapping[str, Any]  # protected headers (COSE's integer labels left out)
    critical: tuple[str, ...]
    certificates: tuple[bytes, ...]  # DER, leaf first
    signed: bytes  # the bytes the signature is over
    signature: bytes
    payload: bytes
    signing_time: datetime.datetime | None
    authentic_signing_time: datetime.datetime | None
    expiry: datetime.datetime | None
    has_timestamp: bool


def parse_envelope(data: bytes, media_type: str) -> Envelope:
    """The envelope in ``data`` (by its layer media type); :class:`EnvelopeError` when malformed."""
    if media_type == JWS:
        return _parse_jws(data)
    if media_type == COSE:
        return _parse_cose(data)
    raise EnvelopeError(f"the envelope media type is {media_type!r}, neither {JWS} nor {COSE}")


def _b64url(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise EnvelopeError(f"{what} is missing")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{what} is not base64url") from None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError:
        raise EnvelopeError(f"{what} is not JSON") from None
    if not isinstance(document, dict):
        raise EnvelopeError(f"{what} is not a JSON object")
    return document


def _parse_jws(data: bytes) -> Envelope:
    document = _json_object(data, "the JWS envelope")
    extra = sorted(set(document) - {"payload", "protected", "header", "signature"})
    if extra:
        raise EnvelopeError(f"the JWS envelope has fields the flattened JSON form does not: {', '.join(extra)}")
    protected_b64 = document.get("protected")
    payload_b64 = document.get("payload")
    protected_raw = _b64url(protected_b64, "the JWS protected header")
    payload = _b64url(payload_b64, "the JWS payload")
    signature = _b64url(document.get("signature"), "the JWS signature")
    headers = _json_object(protected_raw, "the JWS protected header")
    unprotected = document.get("header")
    if not isinstance(unprotected, dict):
        raise EnvelopeError("the JWS envelope has no unprotected header (where x5c goes)")
    chain = unprotected.get("x5c")
    if not isinstance(chain, list) or not chain or not all(isinstance(c, str) for c in chain):
        raise EnvelopeError("the JWS envelope has no x5c certificate chain")
    try:
        certificates = tuple(base64.b64decode(c, validate=True) for c in chain)
    except (binascii.Error, ValueError):
        raise EnvelopeError("an x5c certificate is not base64") from None
    if headers.get("cty") != PAYLOAD_TYPE:
        raise EnvelopeError(f"the content type is {headers.get('cty')!r}, not {PAYLOAD_TYPE}")
    critical = _critical(headers.get("crit"))
    registered = [name for name in ("alg", "cty", "crit") if name in critical]
    if registered:
        raise EnvelopeError(f"crit lists the registered header {registered[0]!r}")
    return Envelope(
        "jws", _text_header(headers, "alg"), headers, critical, certificates,
        f"{protected_b64}.{payload_b64}".encode("ascii"), signature, payload,
        _jws_time(headers, SIGNING_TIME), _jws_time(headers, AUTHENTIC_TIME), _jws_time(headers, EXPIRY),
        _H + "timestampSignature" in unprotected)


def _text_header(headers: Mapping[str, Any], name: str) -> str:
    value = headers.get(name)
    if not isinstance(value, str):
        raise EnvelopeError(f"the protected header {name!r} is missing")
    return value


def _critical(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise EnvelopeError("the protected header 'crit' is missing")
    if not all(isinstance(item, str) for item in value):
        raise EnvelopeError("the protected header 'crit' lists something other than header names")
    return tuple(value)


def _jws_time(headers: Mapping[str, Any], name: str) -> datetime.datetime | None:
    if name not in headers:
        return None
    value = headers[name]
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise EnvelopeError(f"{name} is not an RFC 3339 time: {value!r}")
    return parsed.astimezone(datetime.timezone.utc)


def _parse_cose(data: bytes) -> Envelope:
    try:
        item = cbor.loads(data)
    except cbor.CBORError as exc:
        raise EnvelopeError(f"the COSE envelope is not CBOR: {exc}") from None
    if not isinstance(item, cbor.Tag) or item.tag != _COSE_SIGN1_TAG:
        raise EnvelopeError("the COSE envelope is not a tagged COSE_Sign1")
    parts = item.value
    if (not isinstance(parts, list) or len(parts) != 4 or not isinstance(parts[0], bytes)
            or not isinstance(parts[1], dict) or not isinstance(parts[2], bytes) or not isinstance(parts[3], bytes)):
        raise EnvelopeError("the COSE_Sign1 is not [protected, unprotected, payload, signature]")
    protected_raw, unprotected, payload, signature = parts
    try:
        headers = cbor.loads(protected_raw)
    except cbor.CBORError as exc:
        raise EnvelopeError(f"the COSE protected header is not CBOR: {exc}") from None
    if not isinstance(headers, dict):
        raise EnvelopeError("the COSE protected header is not a map")
    label = headers.get(_COSE_ALG)
    alg = _COSE_ALGORITHMS.get(label) if isinstance(label, int) else None
    if alg is None:
        raise EnvelopeError(f"the COSE algorithm {headers.get(_COSE_ALG)!r} is not one the Notary Project allows")
    if headers.get(_COSE_CTY) != PAYLOAD_TYPE:
        raise EnvelopeError(f"the content type is {headers.get(_COSE_CTY)!r}, not {PAYLOAD_TYPE}")
    critical = headers.get(_COSE_CRIT)
    if isinstance(critical, list) and any(isinstance(label, int) and 0 <= label <= 8 for label in critical):
        raise EnvelopeError("crit lists a COSE common header label (0 to 8)")
    chain = unprotected.get(_COSE_X5CHAIN, headers.get(_COSE_X5CHAIN))
    if isinstance(chain, bytes):
        chain = [chain]
    if not isinstance(chain, list) or not chain or not all(isinstance(c, bytes) for c in chain):
        raise EnvelopeError("the COSE envelope has no x5chain certificate chain")
    named = {key: value for key, value in headers.items() if isinstance(key, str)}
    signed = cbor.dumps(["Signature1", protected_raw, b"", payload])
    return Envelope(
        "cose", alg, named, _critical(critical), tuple(chain), signed, signature, payload,
        _cose_time(named, SIGNING_TIME), _cose_time(named, AUTHENTIC_TIME), _cose_time(named, EXPIRY),
        _H + "timestampSignature" in unprotected)


def _cose_time(headers: Mapping[str, Any], name: str) -> datetime.datetime | None:
    if name not in headers:
        return None
    value = headers[name]
    seconds = value.value if isinstance(value, cbor.Tag) and value.tag == _COSE_DATE_TAG else None
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise EnvelopeError(f"{name} is not a CBOR epoch date/time")
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise EnvelopeError(f"{name} is out of range") from None


def check_headers(envelope: Envelope) -> str:
    """The signing scheme, after the critical-header and scheme rules; :class:`EnvelopeError` otherwise."""
    headers, critical = envelope.headers, envelope.critical
    scheme = headers.get(SIGNING_SCHEME)
    if SIGNING_SCHEME not in critical:
        raise EnvelopeError(f"crit does not list {SIGNING_SCHEME}")
    for name in (AUTHENTIC_TIME, EXPIRY):
        if name in headers and name not in critical:
            raise EnvelopeError(f"{name} is present but not marked critical")
    for name in critical:
        if name not in headers:
            raise EnvelopeError(f"crit lists {name}, which is not in the protected header")
        if name == VERIFICATION_PLUGIN or name.startswith(VERIFICATION_PLUGIN):
            raise EnvelopeError(f"it requires the verification plugin {headers.get(VERIFICATION_PLUGIN)!r}, "
                                "which this gate cannot run")
        if name not in _UNDERSTOOD_CRITICAL:
            raise EnvelopeError(f"it marks {name!r} critical, which this verifier does not process")
    if scheme == SCHEME_SIGNING_AUTHORITY:
        raise EnvelopeError(f"its signing scheme is {SCHEME_SIGNING_AUTHORITY}, which needs a signing-authority "
                            "trust store; only notary.x509 is verified")
    if scheme != SCHEME_X509:
        raise EnvelopeError(f"its signing scheme is {scheme!r}, not {SCHEME_X509}")
    if envelope.signing_time is None:
        raise EnvelopeError(f"{SIGNING_TIME} is missing (required with {SCHEME_X509})")
    if envelope.authentic_signing_time is not None:
        raise EnvelopeError(f"{AUTHENTIC_TIME} must not be present with {SCHEME_X509}")
    return scheme


# -- certificates ----------------------------------------------------------------------------------
_FORBIDDEN_EKU = {
    "anyExtendedKeyUsage": "2.5.29.37.0", "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH.dotted_string,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING.dotted_string,
} if CRYPTOGRAPHY_IMPORT_ERROR is None else {}
_SHA1_SIGNATURES = frozenset({"1.2.840.113549.1.1.5", "1.2.840.10045.4.1"})
_HASHES = {"sha256": "SHA256", "sha384": "SHA384", "sha512": "SHA512"}


def load_chain(envelope: Envelope) -> list[Any]:
    """The envelope's certificates, parsed; :class:`EnvelopeError` when one is not a certificate."""
    try:
        return [x509.load_der_x509_certificate(der) for der in envelope.certificates]
    except ValueError:
        raise EnvelopeError("a certificate of the chain is not DER X.509") from None


def _extension(certificate: Any, kind: Any) -> Any:
    try:
        return certificate.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def check_chain(chain: Sequence[Any]) -> None:
    """The certificate requirements and the chain's order; :class:`EnvelopeError` naming the first failure."""
    for position, certificate in enumerate(chain):
        name = "the signing certificate" if position == 0 else f"chain certificate {position + 1}"
        if certificate.signature_algorithm_oid.dotted_string in _SHA1_SIGNATURES:
            raise EnvelopeError(f"{name} is signed with SHA-1")
        key = certificate.public_key()
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
            raise EnvelopeError(f"{name} has a {key.key_size}-bit RSA key (2048 at least)")
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
            raise EnvelopeError(f"{name} has a {key.curve.key_size}-bit EC key (256 at least)")
        issuer = chain[position + 1] if position + 1 < len(chain) else certificate
        if certificate.issuer != issuer.subject:
            raise EnvelopeError(f"{name} is not issued by the next certificate of the chain"
                                if position + 1 < len(chain) else "the chain does not end at a root (self-signed)")
        try:
            certificate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise EnvelopeError(f"{name}'s signature does not verify with its issuer's key"
                                if position + 1 < len(chain) else "the chain does not end at a root (self-signed)"
                                ) from None
        if position == 0:
            _check_leaf(certificate)
        else:
            _check_ca(certificate, name, below=position - 1)


def _check_leaf(certificate: Any) -> None:
    constraints = _extension(certificate, x509.BasicConstraints)
    if constraints is not None and constraints.value.ca:
        raise EnvelopeError("the signing certificate is a CA certificate")
    usage = _extension(certificate, x509.KeyUsage)
    if usage is None or not usage.critical:
        raise EnvelopeError("the signing certificate has no critical keyUsage")
    bits = usage.value
    if not bits.digital_signature:
        raise EnvelopeError("the signing certificate's keyUsage lacks digitalSignature")
    if (bits.key_encipherment or bits.data_encipherment or bits.key_agreement or bits.key_cert_sign
            or bits.crl_sign):
        raise EnvelopeError("the signing certificate's keyUsage allows more than signing")
    eku = _extension(certificate, x509.ExtendedKeyUsage)
    if eku is not None:
        present = {oid.dotted_string for oid in eku.value}
        wrong = [label for label, oid in _FORBIDDEN_EKU.items() if oid in present]
        if wrong:
            raise EnvelopeError(f"the signing certificate's extendedKeyUsage has {', '.join(wrong)}")


def _check_ca(certificate: Any, name: str, below: int) -> None:
    constraints = _extension(certificate, x509.BasicConstraints)
    if constraints is None or not constraints.critical or not constraints.value.ca:
        raise EnvelopeError(f"{name} is not a CA (critical basicConstraints with cA)")
    limit = constraints.value.path_length
    if limit is not None and below > limit:
        raise EnvelopeError(f"{name} allows {limit} intermediate certificates below it, the chain has {below}")
    usage = _extension(certificate, x509.KeyUsage)
    if usage is None or not usage.critical or not usage.value.key_cert_sign:
        raise EnvelopeError(f"{name} has no critical keyUsage with keyCertSign")


def check_algorithm(envelope: Envelope, key: Any) -> str:
    """The hash name of ``alg``, after checking it is what the signing key calls for."""
    spec = _JWS_ALGORITHMS.get(envelope.algorithm)
    if spec is None:
        raise EnvelopeError(f"alg {envelope.algorithm!r} is not one the Notary Project allows")
    hash_name = spec
    if isinstance(key, rsa.RSAPublicKey):
        wanted = {2048: "PS256", 3072: "PS384", 4096: "PS512"}.get(key.key_size)
        actual = f"{key.key_size}-bit RSA"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        wanted = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(key.curve.name)
        actual = f"EC {key.curve.name}"
    else:
        wanted, actual = None, type(key).__name__
    if wanted is None:
        raise EnvelopeError(f"the signing key ({actual}) is not one the Notary Project allows")
    if wanted != envelope.algorithm:
        raise EnvelopeError(f"alg is {envelope.algorithm} but the signing key ({actual}) calls for {wanted}")
    return hash_name


def signature_verifies(envelope: Envelope, key: Any, hash_name: str) -> bool:
    """True when the envelope's signature over its signing input verifies with ``key``."""
    algorithm = getattr(hashes, _HASHES[hash_name])()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(envelope.signature, envelope.signed,
                       padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH), algorithm)
        else:
            half = len(envelope.signature) // 2
            if half == 0 or len(envelope.signature) != 2 * ((key.curve.key_size + 7) // 8):
                return False
            der = encode_dss_signature(int.from_bytes(envelope.signature[:half], "big"),
                                       int.from_bytes(envelope.signature[half:], "big"))
            key.verify(der, envelope.signed, ec.ECDSA(algorithm))
    except (InvalidSignature, ValueError):
        return False
    return True


def subject_matches(certificate: Any, identity: Sequence[tuple[str, str]]) -> bool:
    """True when every RDN of ``identity`` is in the certificate's subject with the same value."""
    subject: dict[str, set[str]] = {}
    for attribute in certificate.subject:
        short = _SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string)
        subject.setdefault(short.upper(), set()).add(str(attribute.value))
    return all(value in subject.get(name, set()) for name, value in identity)


_SHORT_NAMES = {
    NameOID.COUNTRY_NAME: "C", NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.LOCALITY_NAME: "L",
    NameOID.ORGANIZATION_NAME: "O", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.COMMON_NAME: "CN",
    NameOID.EMAIL_ADDRESS: "E", NameOID.SERIAL_NUMBER: "SERIALNUMBER",
} if CRYPTOGRAPHY_IMPORT_ERROR is None else {}


def _valid_at(chain: Sequence[Any], moment: datetime.datetime) -> Any | None:
    """The first certificate not valid at ``moment``, or None."""
    return next((c for c in chain if not _validity(c)[0] <= moment <= _validity(c)[1]), None)


def _validity(certificate: Any) -> tuple[datetime.datetime, datetime.datetime]:
    """notBefore and notAfter as aware UTC times (the ``_utc`` properties exist from cryptography 42)."""
    if hasattr(certificate, "not_valid_before_utc"):
        return certificate.not_valid_before_utc, certificate.not_valid_after_utc
    utc = datetime.timezone.utc
    return certificate.not_valid_before.replace(tzinfo=utc), certificate.not_valid_after.replace(tzinfo=utc)


def _period(certificate: Any) -> str:
    start, end = _validity(certificate)
    return f"valid {_when(start)} to {_when(end)}"


def _when(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- one signature ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """What checking one Notation signature found: ``result`` when accepted, else ``reason``."""

    result: Mapping[str, Any] | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.result is not None


def verify_envelope(data: bytes, media_type: str, digest: str, policy: NotationPolicy, trusted: Sequence[Any],
                    *, now: datetime.datetime | None = None, artifact: Mapping[str, Any] | None = None) -> Verdict:
    """Check one envelope about ``digest`` against ``policy`` and the ``trusted`` certificates.

    ``artifact`` may hold the subject's ``mediaType`` and ``size``, compared with the payload's.
    ``now`` is the verification time (tests pin it; the default is the current UTC time).
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        envelope = parse_envelope(data, media_type)
        chain = load_chain(envelope)
        leaf_key = chain[0].public_key()
        hash_name = check_algorithm(envelope, leaf_key)
        if not signature_verifies(envelope, leaf_key, hash_name):
            return Verdict(reason="the signature does not verify with its signing certificate")
        scheme = check_headers(envelope)
        _check_payload(envelope.payload, digest, artifact)
        check_chain(chain)
    except EnvelopeError as exc:
        return Verdict(reason=str(exc))
    trusted_der = {c.public_bytes(serialization.Encoding.DER): c for c in trusted}
    anchor = next((trusted_der[der] for der in envelope.certificates if der in trusted_der), None)
    if anchor is None:
        return Verdict(reason=f"its chain (root {chain[-1].subject.rfc4514_string()}) leads to no certificate "
                              "of the trust store")
    leaf = chain[0]
    identity = leaf.subject.rfc4514_string()
    if not policy.any_identity and not any(subject_matches(leaf, i) for i in policy.trusted_identities):
        return Verdict(reason=f"its signer {identity} is not a trusted identity")
    signing_time = envelope.signing_time
    if signing_time is None:  # check_headers requires it
        raise AssertionError("a checked envelope has a signing time")
    expired = _valid_at(chain, signing_time)
    if expired is not None:
        return Verdict(reason=f"certificate {expired.subject.rfc4514_string()} was not valid at the signing time "
                              f"{_when(signing_time)} ({_period(expired)})")
    expired = _valid_at(chain, now)
    if expired is not None:
        return Verdict(reason=f"certificate {expired.subject.rfc4514_string()} is not valid now ({_period(expired)}) "
                              "and no authentic timestamp is verified")
    if envelope.expiry is not None and now >= envelope.expiry:
        return Verdict(reason=f"the signature expired at {_when(envelope.expiry)}")
    return Verdict({
        "kind": NOTATION, "envelope": envelope.format, "algorithm": envelope.algorithm, "identity": identity,
        "issuer": leaf.issuer.rfc4514_string(), "trust_anchor": anchor.subject.rfc4514_string(),
        "certificate": "sha256:" + hashlib.sha256(envelope.certificates[0]).hexdigest(),
        "signing_scheme": scheme, "signing_time": _when(signing_time),
        "expiry": _when(envelope.expiry) if envelope.expiry else None,
    })


def _check_payload(payload: bytes, digest: str, artifact: Mapping[str, Any] | None) -> None:
    try:
        document = json.loads(payload)
    except ValueError:
        raise EnvelopeError("the signed payload is not JSON") from None
    target = document.get("targetArtifact") if isinstance(document, dict) else None
    if not isinstance(target, dict) or not isinstance(target.get("digest"), str):
        raise EnvelopeError("the signed payload has no targetArtifact digest")
    if target["digest"] != digest:
        raise EnvelopeError(f"the signed payload names {target['digest']}")
    for field_name, key in (("mediaType", "mediaType"), ("size", "size")):
        known = (artifact or {}).get(key)
        if known is not None and target.get(field_name) != known:
            raise EnvelopeError(f"the signed payload's {field_name} is {target.get(field_name)!r}, "
                                f"the image's is {known!r}")
