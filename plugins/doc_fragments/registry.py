# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared documentation of the connection, authentication and TLS options."""
from __future__ import annotations


class ModuleDocFragment:
    """Options every registry module and the lookup accept."""

    # Connection and authentication options common to every module and the lookup.
    DOCUMENTATION = r"""
options:
  username:
    description:
      - Username for the registry the task writes to (the destination of a copy, the repository of
        M(ocireg.registry.registry_tag)), or the one registry a read-only task reads.
      - These top-level credentials (O(username), O(password), O(registry_token)) are sent to that
        registry only, never to another host the task reads from; give those C(src_auth) or an entry in
        O(registry_auth). A read-only task whose references are on several registries refuses
        top-level credentials; use O(registry_auth) there.
      - When no credentials are given for a registry, they are read from O(auth_file) or the default
        auth files (see O(auth_file)), including credential helpers.
    type: str
  password:
    description:
      - Password or access token for O(username). Never logged or returned.
    type: str
  registry_token:
    description:
      - A bearer token sent as-is (C(Authorization) header, C(Bearer) scheme) to registries that use token auth.
      - Most cloud registries (ECR, Artifact Registry, ACR) want their short-lived tokens as O(password)
        with a fixed O(username) instead; see the authentication guide in C(docs/guide_authentication.md).
      - Takes precedence over O(username) and O(password). Never logged or returned.
    type: str
  auth_file:
    description:
      - Path to a Docker C(config.json) or podman C(auth.json) to read credentials from.
      - When not set, the files are searched in this order, as Docker and skopeo do
        C($DOCKER_CONFIG/config.json), C(~/.docker/config.json), C($REGISTRY_AUTH_FILE),
        C($XDG_RUNTIME_DIR/containers/auth.json), C(~/.config/containers/auth.json).
      - C(credHelpers) and C(credsStore) entries run C(docker-credential-<name> get).
      - Entries are matched by registry host, and podman-style C(host/namespace) keys by the
        repository, the longest prefix winning (C(quay.io/team/app) beats C(quay.io/team) beats C(quay.io)).
      - An auth file's entries are per host, so one file serves every registry of a task.
    type: path
  validate_certs:
    description:
      - Verify the registry's TLS certificate.
      - V(false) is taken as asked for, without a warning printed for each unverified request
        (as C(skopeo --tls-verify=false)); prefer O(ca_path) with the registry's CA.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificates to trust for the registry (and its token service).
    type: path
  client_cert:
    description:
      - PEM client certificate for registries that require mutual TLS.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert).
    type: path
  plain_http:
    description:
      - Talk plain HTTP instead of HTTPS.
      - When not set, plain HTTP is used only for loopback hosts (C(localhost), C(127.0.0.0/8), C(::1)), as Docker does.
    type: bool
  timeout:
    description:
      - Seconds to wait for the registry to connect or to send data, per request.
    type: float
    default: 60
  retries:
    description:
      - How many times a request is retried after a connection error or a 408, 429, 500, 502, 503 or 504 answer.
      - Waits grow exponentially with jitter; C(Retry-After) is honoured up to 60 seconds.
    type: int
    default: 3
  prune_lease:
    description:
      - The prune lease, a coordination between this collection's writers and prunes of one repository. Off
        by default. Meant to be set once for every task of the action group with C(module_defaults) for
        C(group/ocireg.registry.registry), so that prunes and writers agree; M(ocireg.registry.registry_prune),
        M(ocireg.registry.registry_tag) and M(ocireg.registry.registry_copy) use it, the other modules and the
        lookup accept it and ignore it.
      - When V(true), M(ocireg.registry.registry_prune) writes a tag C(ocireg-prune-lease-<expiry>-<hex>) (a tiny
        OCI artifact) into each repository it deletes from, before its last look at the tags, and deletes it
        after its last deletion. It is renewed every 30 seconds and counts for 60 seconds after its last
        renewal, so a prune killed mid-way leaves it for at most 60 seconds (plus 15 seconds allowed for clock
        skew); the next prune with the lease removes an expired one. While the tag exists, webhooks, scanners,
        replication rules and scripts that read the tag list see it.
      - When V(true), M(ocireg.registry.registry_tag) and M(ocireg.registry.registry_copy) list the tags once
        after writing theirs. A live lease makes them wait until it is gone, at most 75 seconds, with a
        warning naming the lease and its expiry; then they read their tags back and write again any tag a
        prune deleted meanwhile (C(restored_after_prune) in the result). An expired lease is ignored.
      - When V(false), no lease is written or looked for and no request is sent for it. Without it, a tag
        pushed onto an image a concurrent prune deletes in the same second can be lost; the measured
        windows are in the collection's guide on running in parallel.
    type: bool
    default: false
  registry_auth:
    description:
      - Credentials for many registries at once, each entry used only for the registry it names,
        like the C(auths) of a Docker config. Suits C(module_defaults) for the action group
        C(group/ocireg.registry.registry).
      - For a registry, C(src_auth) or C(dest_auth) win over its entry here, and its entry wins over the
        top-level options, except that the top-level credentials win for the registry the task writes to.
      - The entries' passwords and tokens are secrets (no_log), scrubbed from results and errors.
    type: list
    elements: dict
    suboptions:
      registry:
        description:
          - The registry host the entry is for, such as C(ghcr.io) or C(registry.example.com:5000);
            Docker Hub's names (C(docker.io), C(index.docker.io)) are one registry.
        type: str
        required: true
      username:
        description: Username for this registry.
        type: str
      password:
        description: Password or access token for the username. Never logged or returned.
        type: str
      registry_token:
        description: A bearer token sent as-is; takes precedence over username and password. Never logged or returned.
        type: str
      auth_file:
        description: Docker C(config.json) or podman C(auth.json) to read credentials from.
        type: path
      validate_certs:
        description: Verify the registry's TLS certificate.
        type: bool
      ca_path:
        description: PEM file with the CA certificates to trust.
        type: path
      client_cert:
        description: PEM client certificate for mutual TLS.
        type: path
      client_key:
        description: PEM private key of the client certificate.
        type: path
      plain_http:
        description: Talk plain HTTP instead of HTTPS; when not set, only loopback hosts use plain HTTP.
        type: bool
notes:
  - Passwords, tokens and the C(auth) strings of auth files never appear in results, warnings or errors.
  - C(Authorization) is never sent to another host after a redirect.
  - A credential is sent only to the registry it was given for (and to the token service that registry's
    own challenge names).
requirements:
  - requests >= 2.28 (on the host that executes the module)
"""

    # src_auth of modules that read from a second registry (registry_copy, registry_tag).
    SRC_AUTH = r"""
options:
  src_auth:
    description:
      - Connection options for the source registry only, when they differ from the module's own.
      - Credentials given here reach only the source's registry. When none are given, the source gets
        its O(registry_auth) entry or auth files; the top-level credentials only when it is on the same
        registry as the destination. A source that answers 401 without credentials fails naming this option.
      - A non-credential key left out falls back to the module's top-level option of the same name.
    type: dict
    suboptions:
      username:
        description: Username for this registry.
        type: str
      password:
        description: Password or access token for the username. Never logged or returned.
        type: str
      registry_token:
        description: A bearer token sent as-is; takes precedence over username and password. Never logged or returned.
        type: str
      auth_file:
        description: Docker C(config.json) or podman C(auth.json) to read credentials from.
        type: path
      validate_certs:
        description: Verify the registry's TLS certificate.
        type: bool
      ca_path:
        description: PEM file with the CA certificates to trust.
        type: path
      client_cert:
        description: PEM client certificate for mutual TLS.
        type: path
      client_key:
        description: PEM private key of the client certificate.
        type: path
      plain_http:
        description: Talk plain HTTP instead of HTTPS; when not set, only loopback hosts use plain HTTP.
        type: bool
"""

    # dest_auth of modules that write to a second registry (registry_copy).
    DEST_AUTH = r"""
options:
  dest_auth:
    description:
      - Connection options for the destination registry only, with the same keys as O(src_auth).
      - Credentials given here win over the top-level ones for the destination.
        A key left out falls back to the module's top-level option of the same name.
    type: dict
    suboptions:
      username:
        description: Username for this registry.
        type: str
      password:
        description: Password or access token for the username. Never logged or returned.
        type: str
      registry_token:
        description: A bearer token sent as-is; takes precedence over username and password. Never logged or returned.
        type: str
      auth_file:
        description: Docker C(config.json) or podman C(auth.json) to read credentials from.
        type: path
      validate_certs:
        description: Verify the registry's TLS certificate.
        type: bool
      ca_path:
        description: PEM file with the CA certificates to trust.
        type: path
      client_cert:
        description: PEM client certificate for mutual TLS.
        type: path
      client_key:
        description: PEM private key of the client certificate.
        type: path
      plain_http:
        description: Talk plain HTTP instead of HTTPS; when not set, only loopback hosts use plain HTTP.
        type: bool
"""

    # The action group every module belongs to (meta/runtime.yml), for module_defaults.
    VERIFY = r"""
options:
  verify:
    description:
      - The verification gate (see the guide C(docs/guide_signed_promotion.md)). The source image's cosign
        signatures and referrers are checked before any write; when a requirement fails the task fails with one
        line saying which requirement failed for which digest, and nothing is written.
      - Signatures are looked for where cosign puts them, the tag scheme (C(sha256-<hex>.sig), C(.att)) and
        OCI 1.1 referrers (sigstore bundles, cosign's simple-signing referrers; on registries without the
        referrers API, the C(sha256-<hex>) fallback tag), and Notation signatures among the referrers. A
        signature counts only when it verifies with one of O(verify.keys), or is a keyless signature by an
        identity of O(verify.keyless), or is a Notation signature O(verify.notation) accepts, and its signed
        content names exactly the digest being verified. These are alternatives; one accepted signature suffices.
      - Offline. A keyless (Sigstore) signature is checked against O(verify.trusted_root) with what it
        carries (Fulcio certificate, SCT, Rekor signed entry timestamp and inclusion proof); nothing is fetched.
      - What was verified (digest, key fingerprint or keyless identity, issuer, log index and signing time,
        signature source) is returned in RV(verified).
    type: dict
    suboptions:
      keys:
        description:
          - Public keys in PEM (C(-----BEGIN PUBLIC KEY-----)), ECDSA P-256 (what C(cosign generate-key-pair)
            makes), P-384, P-521, RSA (at least 2048 bits, PKCS#1 v1.5 with SHA-256 as cosign uses) or Ed25519.
          - An entry that contains C(-----BEGIN) is PEM text, anything else the path of a PEM file read where
            the module runs. A signature by any one of the keys suffices.
          - Required unless O(verify.keyless) or O(verify.notation) is given or only unsigned referrers are asked
            for.
        type: list
        elements: str
      keyless:
        description:
          - Keyless (Sigstore) signers whose signatures count, for example a GitHub Actions release workflow.
            A signature counts when its Fulcio certificate matches one entry.
          - Checked offline against O(verify.trusted_root). The certificate must chain to a certificate
            authority of the root as of the signing time (the Rekor entry's time), carry a verifying SCT, and
            its signature must be in a transparency-log entry for this very signature, proven by the signed
            entry timestamp (and the inclusion proof, when the signature carries one).
          - Found in cosign's tag scheme (C(dev.sigstore.cosign/certificate) and C(bundle) annotations on a
            C(.sig) layer) and in sigstore bundles (referrers or the fallback tag).
          - Needs the Python package C(cryptography) 42 or newer where the module runs (ansible-core needs it
            anyway); no Sigstore library is used.
        type: list
        elements: dict
        suboptions:
          identity:
            description:
              - The certificate identity (its subject alternative name, an email or a URI such as
                C(https://github.com/org/repo/.github/workflows/release.yml@refs/tags/v1.2.3)), exactly.
              - Give exactly one of O(verify.keyless[].identity) and O(verify.keyless[].identity_regex).
            type: str
          identity_regex:
            description:
              - A Python regular expression the whole identity must match (anchored at both ends, unlike
                cosign's C(--certificate-identity-regexp)).
            type: str
          issuer:
            description:
              - The OIDC issuer the certificate names, exactly, such as
                C(https://token.actions.githubusercontent.com) or C(https://accounts.google.com).
              - Give exactly one of O(verify.keyless[].issuer) and O(verify.keyless[].issuer_regex).
            type: str
          issuer_regex:
            description: A Python regular expression the whole OIDC issuer must match.
            type: str
      trusted_root:
        description:
          - The Sigstore trusted root (C(trusted_root.json)) keyless signatures are checked against.
          - V(public-good), the default, is Sigstore's public-good root shipped with the collection. Anything
            else is the path of a C(trusted_root.json) read where the module runs, for a refreshed public-good
            root, an air-gapped site or a private Sigstore; the guide says how to fetch one.
        type: path
      require:
        description:
          - V(signature) needs a signature (cosign simple signing in the C(.sig) tag, a sigstore bundle signing
            the image with cosign's sign predicate, or a Notation signature that O(verify.notation) accepts).
          - V(attestation) needs a signed in-toto statement (DSSE in the C(.att) tag, or a bundle with any other
            predicate type).
          - V([]) checks only O(verify.referrers).
        type: list
        elements: str
        choices: [signature, attestation]
        default: [signature]
      annotations:
        description:
          - Key/values that must be in the signed payload of every accepted signature (cosign's C(-a env=prod)).
            Compared as text. Needs V(signature) in O(verify.require).
        type: dict
        default: {}
      referrers:
        description:
          - OCI 1.1 referrers that must be attached to the image, for example an SPDX SBOM.
        type: list
        elements: dict
        default: []
        suboptions:
          artifact_type:
            description: The artifact type a referrer must have, such as C(application/spdx+json).
            type: str
            required: true
          signed:
            description: At least one such referrer must itself have a valid signature by one of O(verify.keys) or
              O(verify.keyless).
            type: bool
            default: false
      index:
        description:
          - For an image index, V(self) verifies the index's own digest (what C(cosign sign) signs),
            V(children) every child image (what C(cosign sign --recursive) adds; buildkit attestation
            children are skipped), V(both) all of them. Ignored for a single image.
        type: str
        choices: [self, children, both]
        default: self
      notation:
        description:
          - The trust policy for Notation (Notary Project) signatures (see C(docs/guide_notation.md)). A Notation
            signature is an OCI 1.1 referrer of artifact type C(application/vnd.cncf.notary.signature) holding a
            JWS or COSE envelope; one this policy accepts is a signature, so it meets the default
            O(verify.require=[signature]).
          - One signature must pass every check of the Notary Project at level C(strict) except revocation
            (offline) and the RFC 3161 timestamp (not verified, so the certificate chain must be valid now).
        type: dict
        suboptions:
          trust_store:
            description:
              - The trusted CA certificates. Each entry is PEM text (it contains C(-----BEGIN)), or a path read
                where the module runs, a PEM or DER file, or a directory whose C(.pem), C(.crt) and C(.cer)
                files are read (a Notation named store such as C(~/.config/notation/truststore/x509/ca/acme)).
            type: list
            elements: str
            required: true
          trusted_identities:
            description:
              - "The signing certificate's subject must match one of these, given as
                C(x509.subject: C=US, ST=WA, O=acme, CN=release) (C, ST and O at least; every RDN given must be
                in the subject with that value), or V(*) alone for any certificate the trust store issued."
            type: list
            elements: str
            required: true
          registry_scopes:
            description:
              - The repositories the policy applies to, fully qualified (C(registry.example.com/team/app)), or
                V(*) alone for every repository. A repository outside them is refused.
            type: list
            elements: str
            required: true
"""

    ACTION_GROUP = r"""
attributes:
  action_group:
    description:
      - Use C(group/ocireg.registry.registry) in C(module_defaults) to set defaults for this module,
        such as the credentials of O(registry_auth).
    support: full
    membership:
      - ocireg.registry.registry
"""
