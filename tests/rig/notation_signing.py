"""Notation signatures made here, in the Notary Project's formats, for images the tests push.

Real notation signatures (tests/fixtures/notation) name images whose blobs we do not have, so the
gate's end-to-end tests sign fresh images with a test-made PKI: a root CA, an optional
intermediate, and a code-signing leaf, made with ``cryptography``. The envelopes follow the
specs (signature-envelope-jws.md, signature-envelope-cose.md) independently of the collection's
code: flattened JWS JSON signed over ``b64url(protected).b64url(payload)``, COSE_Sign1 over the
``Sig_structure``, both RSASSA-PSS (salt = hash length) or raw r||s ECDSA.
"""
from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.rig.images import OCI_EMPTY, Blob, Image, Layer, make_image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notation"
SIGNATURE_ARTIFACT = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
COSE = "application/cose"
PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _name(**parts: str) -> x509.Name:
    oids = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME, "L": NameOID.LOCALITY_NAME,
            "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in parts.items()])


@dataclass
class Authority:
    """A CA (root when ``parent`` is None) that issues code-signing certificates."""

    name: str = "Test Root"
    parent: Authority | None = None
    key: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        subject = _name(C="US", ST="WA", O="ocireg-test", CN=self.name)
        issuer_key = self.parent.key if self.parent else self.key
        issuer_name = self.parent.cert.subject if self.parent else subject
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(NOW - 3650 * DAY).not_valid_after(NOW + 3650 * DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                    critical=True)
                     .sign(issuer_key, hashes.SHA256()))

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def chain(self) -> list[x509.Certificate]:
        return [self.cert] + (self.parent.chain() if self.parent else [])

    def issue(self, cn: str = "release", *, org: str = "ocireg-test", unit: str | None = None, kind: str = "ec",
              not_before: datetime.datetime | None = None, not_after: datetime.datetime | None = None,
              eku: list[Any] | None = None) -> Signer:
        """A code-signing leaf (C=US, ST=WA, O=org[, OU=unit], CN=cn) and its private key."""
        key = rsa.generate_private_key(65537, 3072) if kind == "rsa" else ec.generate_private_key(ec.SECP384R1())
        names = {"C": "US", "ST": "WA", "O": org, **({"OU": unit} if unit else {}), "CN": cn}
        builder = (x509.CertificateBuilder().subject_name(_name(**names))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or NOW - 30 * DAY).not_valid_after(not_after or NOW + 365 * DAY)
                   .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.CODE_SIGNING]), critical=False))
        cert = builder.sign(self.key, hashes.SHA256())
        return Signer(key, [cert, *self.chain()])


@dataclass
class Signer:
    """A leaf key with its chain (leaf first, root last), as ``x5c`` carries it."""

    key: Any
    chain: list[x509.Certificate]

    @property
    def algorithm(self) -> tuple[str, int, Any]:
        """(JWS alg, COSE alg, hash) the spec pairs with this key."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            return {2048: ("PS256", -37, hashes.SHA256()), 3072: ("PS384", -38, hashes.SHA384()),
                    4096: ("PS512", -39, hashes.SHA512())}[self.key.key_size]
        return {"secp256r1": ("ES256", -7, hashes.SHA256()), "secp384r1": ("ES384", -35, hashes.SHA384()),
                "secp521r1": ("ES512", -36, hashes.SHA512())}[self.key.curve.name]

    def sign(self, message: bytes) -> bytes:
        _alg, _cose, algorithm = self.algorithm
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(message, padding.PSS(padding.MGF1(algorithm), algorithm.digest_size), algorithm)
        r, s = decode_dss_signature(self.key.sign(message, ec.ECDSA(algorithm)))
        width = (self.key.curve.key_size + 7) // 8
        return r.to_bytes(width, "big") + s.to_bytes(width, "big")

    def ders(self) -> list[bytes]:
        return [c.public_bytes(serialization.Encoding.DER) for c in self.chain]


def payload(digest: str, media_type: str, size: int) -> bytes:
    return json.dumps({"targetArtifact": {"digest": digest, "mediaType": media_type, "size": size}},
                      separators=(",", ":")).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def jws_envelope(signer: Signer, signed_payload: bytes, *, signing_time: datetime.datetime | None = None,
                 expiry: datetime.datetime | None = None, extra: dict[str, Any] | None = None,
                 crit: list[str] | None = None) -> bytes:
    """A flattened JWS JSON envelope (``application/jose+json``)."""
    headers: dict[str, Any] = {
        "alg": signer.algorithm[0], "cty": PAYLOAD_TYPE, "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": _rfc3339(signing_time or NOW),
    }
    critical = ["io.cncf.notary.signingScheme"]
    if expiry is not None:
        headers["io.cncf.notary.expiry"] = _rfc3339(expiry)
        critical.append("io.cncf.notary.expiry")
    headers.update(extra or {})
    headers["crit"] = crit if crit is not None else critical
    protected = _b64url(json.dumps(headers, separators=(",", ":")).encode())
    body = _b64url(signed_payload)
    signature = signer.sign(f"{protected}.{body}".encode())
    return json.dumps({"payload": body, "protected": protected, "signature": _b64url(signature),
                       "header": {"x5c": [base64.b64encode(d).decode() for d in signer.ders()],
                                  "io.cncf.notary.signingAgent": "ocireg-tests/1"}}).encode()


# -- COSE, encoded here (a deliberately separate encoder from the collection's decoder) -------------
def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes([major << 5 | info]) + n.to_bytes(width, "big")
    raise ValueError(n)


def cbor(value: Any) -> bytes:
    """CBOR of ints, bytes, text, lists, dicts and ("tag", n, value) tuples."""
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)
    if isinstance(value, bytes):
        return _cbor_head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode()
        return _cbor_head(3, len(raw)) + raw
    if isinstance(value, list):
        return _cbor_head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        return _cbor_head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    if isinstance(value, tuple) and value[0] == "tag":
        return _cbor_head(6, value[1]) + cbor(value[2])
    raise TypeError(type(value))


def cose_envelope(signer: Signer, signed_payload: bytes, *, signing_time: datetime.datetime | None = None,
                  expiry: datetime.datetime | None = None) -> bytes:
    """A tagged COSE_Sign1 envelope (``application/cose``)."""
    critical: list[Any] = ["io.cncf.notary.signingScheme"]
    headers: dict[Any, Any] = {1: signer.algorithm[1], 2: critical, 3: PAYLOAD_TYPE,
                               "io.cncf.notary.signingScheme": "notary.x509",
                               "io.cncf.notary.signingTime": ("tag", 1, int((signing_time or NOW).timestamp()))}
    if expiry is not None:
        headers["io.cncf.notary.expiry"] = ("tag", 1, int(expiry.timestamp()))
        critical.append("io.cncf.notary.expiry")
    protected = cbor(headers)
    signature = signer.sign(cbor(["Signature1", protected, b"", signed_payload]))
    return cbor(("tag", 18, [protected, {33: signer.ders(), "io.cncf.notary.signingAgent": "ocireg-tests/1"},
                             signed_payload, signature]))


def signature_manifest(subject: Image, envelope: bytes, media_type: str = JWS) -> Image:
    """The notation signature manifest: artifactType notary signature, one envelope layer, subject set."""
    return make_image(config=Blob(b"{}", OCI_EMPTY), layers=[Layer(envelope, media_type)], subject=subject,
                      artifact_type=SIGNATURE_ARTIFACT)
