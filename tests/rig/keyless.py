"""A private Sigstore for tests: our own Fulcio-like CA, CT log key and Rekor key, in trusted-root form.

Real keyless signatures (tests/fixtures/keyless) name images we cannot push and were made by the
public-good Sigstore, whose keys we do not hold; to sign images a test pushes, this rig plays all
three parties with ``cryptography`` and writes what they would:

* :class:`PrivateSigstore` ``.trusted_root()`` / ``.write_root(path)``: a ``trusted_root.json`` (the
  format Sigstore publishes) naming our CA chain, CT log key and transparency-log key;
* ``.certificate(identity, issuer)``: a short-lived code-signing certificate with the OIDC issuer
  extensions Fulcio adds and an embedded SCT signed by our CT log over the precertificate;
* ``.cosign_annotations(payload, ...)``: the annotations cosign puts on a keyless ``.sig`` layer
  (signature, certificate, chain, and the Rekor bundle: entry body + SET);
* ``.bundle_referrer(subject, ...)``: the sigstore bundle v0.3 referrer cosign v3 pushes (DSSE
  around cosign's sign statement, a ``dsse`` log entry with SET, inclusion proof and checkpoint).

Independent of ``plugins/module_utils`` on purpose, like :mod:`tests.rig.signing`: the material a
test checks the engine with must not be produced by the engine's own code. Each hostile case
the gate must refuse is one keyword away (``signed_at``, ``log_payload``, ``tamper``, ...).
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.rig.images import (
    COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_SIMPLESIGNING,
    Content,
    OCI_MANIFEST,
    Image,
    Layer,
    PushedImage,
    RawPusher,
    cosign_tag,
    sha256_digest,
)
from tests.rig.signing import (
    BUNDLE_V03,
    IN_TOTO,
    _cosign_config,
    in_toto_statement,
    make_bundle_referrer,
    pae,
    simple_signing_payload,
)

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
RELEASE_WORKFLOW = "https://github.com/example/app/.github/workflows/release.yml@refs/heads/main"
_SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_ORIGIN = "rekor.test - 1234"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _spki(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_tree_hash(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _node(merkle_tree_hash(leaves[:split]), merkle_tree_hash(leaves[split:]))


def audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]): the inclusion proof of leaf ``index``."""
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return audit_path(index, leaves[:split]) + [merkle_tree_hash(leaves[split:])]
    return audit_path(index - split, leaves[split:]) + [merkle_tree_hash(leaves[:split])]


@dataclass
class Issued:
    """A signing key and the certificate our CA issued for it."""

    key: Any
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message, ec.ECDSA(hashes.SHA256()))


class PrivateSigstore:
    """Our own CA (root + intermediate), CT log and transparency log, and what they sign."""

    def __init__(self, name: str = "test") -> None:
        self.name = name
        start = _now() - timedelta(days=30)
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.intermediate_key = ec.generate_private_key(ec.SECP384R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.log_key = ec.generate_private_key(ec.SECP256R1())
        self.root_cert = self._ca(f"{name}-root", self.root_key, self.root_key, None, start)
        self.intermediate_cert = self._ca(f"{name}-intermediate", self.intermediate_key, self.root_key,
                                          self.root_cert, start)
        self.start = start
        self.log_index = 1000

    @staticmethod
    def _ca(common_name: str, key: Any, signing_key: Any, issuer: x509.Certificate | None,
            start: datetime) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rig.test"),
                             x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        return (x509.CertificateBuilder().subject_name(subject)
                .issuer_name(issuer.subject if issuer else subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(start + timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                .sign(signing_key, hashes.SHA384()))

    # -- the trusted root ----------------------------------------------------------------------
    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.log_key.public_key())).digest()

    @property
    def ct_log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.ct_key.public_key())).digest()

    def trusted_root(self) -> dict[str, Any]:
        """This Sigstore's ``trusted_root.json`` content."""
        start = self.start.strftime("%Y-%m-%dT%H:%M:%SZ")

        def log(url: str, key: Any, log_id: bytes) -> dict[str, Any]:
            return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
                    "publicKey": {"rawBytes": _b64(_spki(key.public_key())), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                  "validFor": {"start": start}},
                    "logId": {"keyId": _b64(log_id)}}
        chain = [self.intermediate_cert, self.root_cert]
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(f"https://rekor.{self.name}.test", self.log_key, self.log_id)],
            "certificateAuthorities": [{
                "subject": {"organization": "rig.test", "commonName": f"{self.name}-root"},
                "uri": f"https://fulcio.{self.name}.test",
                "certChain": {"certificates": [{"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))}
                                               for c in chain]},
                "validFor": {"start": start}}],
            "ctlogs": [log(f"https://ctfe.{self.name}.test", self.ct_key, self.ct_log_id)],
            "timestampAuthorities": [],
        }

    def write_root(self, path: Path) -> Path:
        path.write_text(json.dumps(self.trusted_root(), indent=2))
        return path

    # -- Fulcio and the CT log -----------------------------------------------------------------
    def certificate(self, identity: str = RELEASE_WORKFLOW, issuer: str = GITHUB_ISSUER, *,
                    not_before: datetime | None = None, lifetime: timedelta = timedelta(minutes=10),
                    sct: bool = True) -> Issued:
        """A Fulcio-style certificate for ``identity`` (URI when it has ``://``, else email)."""
        key = ec.generate_private_key(ec.SECP256R1())
        not_before = not_before or _now() - timedelta(minutes=1)
        name = (x509.UniformResourceIdentifier(identity) if "://" in identity else x509.RFC822Name(identity))
        builder = (x509.CertificateBuilder().subject_name(x509.Name([]))
                   .issuer_name(self.intermediate_cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_before + lifetime)
                   .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                   .add_extension(x509.SubjectAlternativeName([name]), critical=True)
                   .add_extension(x509.UnrecognizedExtension(_ISSUER_V1, issuer.encode()), critical=False)
                   .add_extension(x509.UnrecognizedExtension(_ISSUER_V2, _der(0x0C, issuer.encode())),
                                  critical=False))
        if not sct:
            return Issued(key, builder.sign(self.intermediate_key, hashes.SHA384()))
        precert_tbs = builder.sign(self.intermediate_key, hashes.SHA384()).tbs_certificate_bytes
        millis = int(not_before.timestamp() * 1000) + 500
        issuer_key_hash = hashlib.sha256(_spki(self.intermediate_key.public_key())).digest()
        signed = (b"\x00\x00" + millis.to_bytes(8, "big") + b"\x00\x01" + issuer_key_hash
                  + len(precert_tbs).to_bytes(3, "big") + precert_tbs + b"\x00\x00")
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        one = (b"\x00" + self.ct_log_id + millis.to_bytes(8, "big") + b"\x00\x00" + b"\x04\x03"
               + len(signature).to_bytes(2, "big") + signature)
        listing = len(one).to_bytes(2, "big") + one
        listing = len(listing).to_bytes(2, "big") + listing
        final = builder.add_extension(x509.UnrecognizedExtension(_SCT_OID, _der(0x04, listing)), critical=False)
        certificate = final.sign(self.intermediate_key, hashes.SHA384())
        assert certificate.tbs_precertificate_bytes == precert_tbs, "the SCT must cover the final certificate"
        return Issued(key, certificate)

    @property
    def chain_pem(self) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode()
                       for c in (self.intermediate_cert, self.root_cert))

    # -- Rekor ---------------------------------------------------------------------------------
    def entry(self, body: bytes, integrated_time: int) -> dict[str, Any]:
        """A log entry for ``body`` with its SET (what cosign's bundle annotation holds)."""
        self.log_index += 1
        payload = {"body": _b64(body), "integratedTime": integrated_time, "logID": self.log_id.hex(),
                   "logIndex": self.log_index}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return {"SignedEntryTimestamp": _b64(self.log_key.sign(canonical, ec.ECDSA(hashes.SHA256()))),
                "Payload": payload}

    def checkpoint(self, size: int, root_hash: bytes) -> str:
        note = f"{_ORIGIN}\n{size}\n{_b64(root_hash)}\n"
        signature = self.log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        return note + f"\n\u2014 rekor.{self.name}.test {_b64(self.log_id[:4] + signature)}\n"

    # -- what cosign pushes --------------------------------------------------------------------
    def cosign_annotations(self, payload: bytes, identity: str = RELEASE_WORKFLOW, issuer: str = GITHUB_ISSUER, *,
                           issued: Issued | None = None, signed_at: datetime | None = None,
                           log_payload: bytes | None = None, log: bool = True,
                           tamper: bool = False) -> dict[str, str]:
        """The annotations of a keyless ``.sig`` layer signing ``payload``.

        ``signed_at`` is the log's integrated time (default: within the certificate's life);
        ``log_payload`` logs the hash of other bytes; ``log=False`` leaves the Rekor bundle out;
        ``tamper`` changes the entry's time after the log signed it.
        """
        issued = issued or self.certificate(identity, issuer)
        signature = issued.sign(payload)
        annotations = {COSIGN_SIGNATURE_ANNOTATION: _b64(signature),
                       "dev.sigstore.cosign/certificate": issued.pem,
                       "dev.sigstore.cosign/chain": self.chain_pem}
        if log:
            when = signed_at or issued.certificate.not_valid_before_utc + timedelta(seconds=30)
            body = hashedrekord(log_payload if log_payload is not None else payload, signature, issued.pem)
            entry = self.entry(body, int(when.timestamp()))
            if tamper:
                entry["Payload"]["integratedTime"] += 1
            annotations["dev.sigstore.cosign/bundle"] = json.dumps(entry, separators=(",", ":"))
        return annotations

    def bundle(self, statement: bytes, identity: str = RELEASE_WORKFLOW, issuer: str = GITHUB_ISSUER, *,
               tamper_proof: bool = False) -> bytes:
        """A v0.3 sigstore bundle: DSSE around ``statement``, a dsse log entry with SET and inclusion proof."""
        issued = self.certificate(identity, issuer)
        signature = issued.sign(pae(IN_TOTO, statement))
        envelope = {"payloadType": IN_TOTO, "payload": _b64(statement),
                    "signatures": [{"keyid": "", "sig": _b64(signature)}]}
        body = json.dumps({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256",
                             "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(statement).hexdigest()},
            "signatures": [{"signature": _b64(signature), "verifier": _b64(issued.pem.encode())}]}},
            separators=(",", ":")).encode()
        when = int((issued.certificate.not_valid_before_utc + timedelta(seconds=30)).timestamp())
        entry = self.entry(body, when)
        leaves = [_leaf_hash(b"other entry %d" % n) for n in range(4)]
        index = 2
        leaves.insert(index, _leaf_hash(body))
        root_hash = merkle_tree_hash(leaves)
        hashes_ = audit_path(index, leaves)
        if tamper_proof:
            hashes_[0] = hashlib.sha256(b"not the sibling").digest()
        tlog = {"logIndex": str(entry["Payload"]["logIndex"]), "logId": {"keyId": _b64(self.log_id)},
                "kindVersion": {"kind": "dsse", "version": "0.0.1"}, "integratedTime": str(when),
                "inclusionPromise": {"signedEntryTimestamp": entry["SignedEntryTimestamp"]},
                "inclusionProof": {"logIndex": str(index), "rootHash": _b64(root_hash), "treeSize": str(len(leaves)),
                                   "hashes": [_b64(h) for h in hashes_],
                                   "checkpoint": {"envelope": self.checkpoint(len(leaves), root_hash)}},
                "canonicalizedBody": _b64(body)}
        return json.dumps({"mediaType": BUNDLE_V03, "verificationMaterial": {
            "certificate": {"rawBytes": _b64(issued.certificate.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [tlog]}, "dsseEnvelope": envelope}).encode()

    def bundle_referrer(self, subject: Content, identity: str = RELEASE_WORKFLOW, issuer: str = GITHUB_ISSUER,
                        **options: Any) -> Image:
        """The referrer ``cosign sign`` (v3, bundle format) pushes for ``subject``."""
        return make_bundle_referrer(subject, self.bundle(in_toto_statement(subject.digest), identity, issuer,
                                                         **options))


def hashedrekord(signed: bytes, signature: bytes, certificate_pem: str) -> bytes:
    """The body of a ``hashedrekord`` v0.0.1 Rekor entry for a signature over ``signed``."""
    return json.dumps({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(signed).hexdigest()}},
        "signature": {"content": _b64(signature), "publicKey": {"content": _b64(certificate_pem.encode())}}}},
        separators=(",", ":")).encode()


def make_keyless_sig_manifest(layers: list[tuple[bytes, dict[str, str]]]) -> Image:
    """A ``.sig`` manifest with one simple-signing layer per ``(payload, annotations)``."""
    built = [Layer(payload, COSIGN_SIMPLESIGNING, diff_id=sha256_digest(payload)) for payload, _a in layers]
    config = _cosign_config(built)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                "layers": [layer.descriptor(annotations=annotations) for layer, (_p, annotations) in zip(built, layers)]}
    unique = tuple({layer.digest: layer for layer in built}.values())
    return Image(json.dumps(manifest, separators=(",", ":")).encode(), OCI_MANIFEST, config=config, layers=unique)


def push_keyless_signature(pusher: RawPusher, repository: str, subject_digest: str, sigstore: PrivateSigstore,
                           *, payload: bytes | None = None, **options: Any) -> PushedImage:
    """Push a keyless ``.sig`` for ``subject_digest`` as ``cosign sign`` (tag scheme) lays it out.

    ``payload`` defaults to the simple-signing payload naming ``subject_digest``; ``options`` go
    to :meth:`PrivateSigstore.cosign_annotations` (identity, issuer, and the hostile switches).
    """
    payload = payload if payload is not None else simple_signing_payload(subject_digest)
    annotations = sigstore.cosign_annotations(payload, **options)
    return pusher.push(repository, make_keyless_sig_manifest([(payload, annotations)]), tag=cosign_tag(subject_digest))
