# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``verify`` option: its shape, the same on every module that moves images (pure).

::

    verify:
      keys: [PEM text or path to a PEM file, ...]   # a signature by any one of them counts
      require: [signature]                          # signature, attestation; [] for referrers only
      annotations: {key: value}                     # every accepted signature must carry these
      referrers:                                    # OCI 1.1 referrers that must be attached
        - artifact_type: application/spdx+json
          signed: true                              # ... and themselves signed by one of keys
      index: self                                   # for an index: self, children or both
      keyless:                                      # Sigstore keyless signatures by these identities
        - identity: https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main
          issuer: https://token.actions.githubusercontent.com
      trusted_root: /path/trusted_root.json         # default public-good: Sigstore's, shipped here
      notation:                                     # Notation (Notary Project) signatures: notation/spec.py
        trust_store: [PEM text, or a path]
        trusted_identities: ["x509.subject: C=US, ST=WA, O=acme, CN=release"]
        registry_scopes: [registry.example.com/team/app]

Ways to trust a signature other than ``keys`` are *trust kinds* (:data:`TRUST_KINDS`): each owns
some fields of ``verify``, parses them, and adds their argument spec. A signature counts when it
verifies with a key or satisfies any one kind's rules. A kind (Notation is one: ``notation/``) adds an
entry here, its fields' argument spec to ``spec.py`` (the whole ``verify`` spec lives there, so
modules get it without loading this parser), a loader to ``check.TRUST_LOADERS`` when it reads files
(a trust store), and a checker of its referrers' artifact type to ``check.REFERRER_CHECKERS``; its
verdicts carry what it proved in ``Verdict.proof``, which joins the result of the signature.

:func:`parse_verify` turns the option (a plain mapping, as Ansible passes it) into a
:class:`VerifyPolicy` or raises one :class:`InvalidInputError` line saying what to fix.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.spec import (
    parse_notation,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.spec import (
    INDEX_MODES,
    KEYLESS_FIELDS,
    NOTATION,
    OPTION_SPEC,
    REQUIREMENTS,
    TRUST_KIND_SPECS,
)

__all__ = ["INDEX_MODES", "OPTION_SPEC", "PUBLIC_GOOD", "REQUIREMENTS", "TRUST_KINDS", "KeySource", "KeylessPolicy",
           "KeylessRule", "ReferrerRequirement", "TrustKind", "VerifyPolicy", "parse_verify"]

#: ``verify.trusted_root`` naming the Sigstore public-good root shipped with the collection (the default).
PUBLIC_GOOD = "public-good"
_BASE_FIELDS = ("keys", "require", "annotations", "referrers", "index")
_REFERRER_FIELDS = ("artifact_type", "signed")
_PEM_MARK = "-----BEGIN"


# -- rules -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeylessRule:
    """An identity a keyless certificate must carry: exact text or an anchored regex, for each part."""

    identity: str | None = None
    identity_regex: str | None = None
    issuer: str | None = None
    issuer_regex: str | None = None

    def matches(self, identity: str, issuer: str) -> bool:
        """True when ``identity`` and ``issuer`` satisfy this rule (a regex must match the whole text)."""
        return (_part_matches(identity, self.identity, self.identity_regex)
                and _part_matches(issuer, self.issuer, self.issuer_regex))

    def describe(self) -> str:
        identity = self.identity if self.identity is not None else f"/{self.identity_regex}/"
        issuer = self.issuer if self.issuer is not None else f"/{self.issuer_regex}/"
        return f"{identity} from {issuer}"


def _part_matches(value: str, exact: str | None, pattern: str | None) -> bool:
    if exact is not None:
        return value == exact
    return pattern is not None and re.fullmatch(pattern, value) is not None


@dataclass(frozen=True)
class KeySource:
    """One entry of ``keys``: PEM text given inline, or the path of a PEM file."""

    pem: str | None = None
    path: str | None = None

    def describe(self, position: int) -> str:
        return f"verify.keys[{position}]" + (f" ({self.path})" if self.path else "")


@dataclass(frozen=True)
class ReferrerRequirement:
    """A referrer of ``artifact_type`` must be attached (and, when ``signed``, signed by a given key)."""

    artifact_type: str
    signed: bool = False


@dataclass(frozen=True)
class VerifyPolicy:
    """What must hold for an image before it is promoted or copied."""

    keys: tuple[KeySource, ...] = ()
    require: tuple[str, ...] = ("signature",)
    annotations: Mapping[str, str] = field(default_factory=dict)
    referrers: tuple[ReferrerRequirement, ...] = ()
    index: str = "self"
    #: Parsed rules of each trust kind in use (kind name -> what its parser returned).
    trust: Mapping[str, Any] = field(default_factory=dict)

    def needs_keys(self) -> bool:
        return bool(self.require) or any(r.signed for r in self.referrers)

    @property
    def keyless(self) -> KeylessPolicy | None:
        """The keyless rules, None when ``verify.keyless`` is not given."""
        found = self.trust.get("keyless")
        return found if isinstance(found, KeylessPolicy) else None


@dataclass(frozen=True)
class KeylessPolicy:
    """Keyless signatures count when their certificate satisfies one of ``rules`` under the trusted root."""

    rules: tuple[KeylessRule, ...]
    #: Path of a ``trusted_root.json``; None for Sigstore's public-good root shipped with the collection
    #: (``trusted_root`` unset or ``public-good``).
    trusted_root: str | None = None


@dataclass(frozen=True)
class TrustKind:
    """A way to trust a signature beside ``keys``: the ``verify`` fields it owns, their parser and spec.

    ``parse`` gets the whole ``verify`` mapping and returns the kind's rules, or None when none of
    its fields is given; it raises :class:`InvalidInputError` for bad input.
    """

    fields: tuple[str, ...]
    parse: Callable[[Mapping[str, Any]], Any]
    spec: Mapping[str, Any]


def parse_verify(value: Mapping[str, Any] | None) -> VerifyPolicy | None:
    """The policy the ``verify`` option asks for; None when it is not set."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"verify must be a dictionary (keys, require, ...), not {type(value).__name__}")
    known = _BASE_FIELDS + tuple(name for kind in TRUST_KINDS.values() for name in kind.fields)
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise InvalidInputError(f"verify has unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    keys = tuple(_key_source(entry, position) for position, entry in enumerate(_list(value, "keys")))
    require = _require(value.get("require", ["signature"]))
    annotations = _annotations(value.get("annotations"))
    referrers = tuple(_referrer(entry, position) for position, entry in enumerate(_list(value, "referrers")))
    index = value.get("index") or "self"
    if index not in INDEX_MODES:
        raise InvalidInputError(f"verify.index is {index!r}; choose one of {', '.join(INDEX_MODES)}")
    trust = {name: parsed for name, kind in TRUST_KINDS.items() if (parsed := kind.parse(value)) is not None}
    policy = VerifyPolicy(keys, require, annotations, referrers, index, trust)
    if not policy.require and not policy.referrers:
        raise InvalidInputError("verify asks for nothing: give require (signature, attestation) or referrers")
    if policy.needs_keys() and not keys and not trust:
        raise InvalidInputError("verify needs keys (the public keys, PEM text or file paths, that signatures "
                                "must verify with), keyless (the identities of keyless signers) or notation "
                                "(a Notation trust store and policy)")
    if annotations and "signature" not in require:
        raise InvalidInputError("verify.annotations applies to signatures; add 'signature' to verify.require")
    return policy


def _list(value: Mapping[str, Any], name: str) -> list[Any]:
    entries = value.get(name)
    if entries is None:
        return []
    if not isinstance(entries, (list, tuple)):
        raise InvalidInputError(f"verify.{name} must be a list")
    return list(entries)


def _key_source(entry: Any, position: int) -> KeySource:
    if not isinstance(entry, str) or not entry.strip():
        raise InvalidInputError(f"verify.keys[{position}] must be PEM text or the path of a PEM file")
    if _PEM_MARK in entry:
        return KeySource(pem=entry)
    return KeySource(path=entry.strip())


def _require(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise InvalidInputError("verify.require must be a list of: " + ", ".join(REQUIREMENTS))
    wrong = [item for item in value if item not in REQUIREMENTS]
    if wrong:
        # A Notation signature is a signature (it meets require: [signature]); its rules are verify.notation.
        hint = "; a Notation signature is a signature: give verify.notation" if NOTATION in wrong else ""
        raise InvalidInputError(f"verify.require has {', '.join(map(repr, wrong))}; choose from "
                                + ", ".join(REQUIREMENTS) + hint)
    return tuple(dict.fromkeys(value))


def _annotations(value: Any) -> dict[str, str]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError("verify.annotations must be a dictionary of key: value")
    # cosign's -a key=value always signs text; compare as text so 'true' and true agree.
    return {str(key): _text(item) for key, item in value.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _referrer(entry: Any, position: int) -> ReferrerRequirement:
    where = f"verify.referrers[{position}]"
    if not isinstance(entry, Mapping):
        raise InvalidInputError(f"{where} must be a dictionary with artifact_type (and signed)")
    unknown = sorted(set(entry) - set(_REFERRER_FIELDS))
    if unknown:
        raise InvalidInputError(f"{where} has unknown option(s) {', '.join(unknown)}; known: artifact_type, signed")
    artifact_type = entry.get("artifact_type")
    if not isinstance(artifact_type, str) or "/" not in artifact_type:
        raise InvalidInputError(f"{where}.artifact_type must be a media type such as application/spdx+json")
    signed = entry.get("signed", False)
    if not isinstance(signed, bool):
        raise InvalidInputError(f"{where}.signed must be true or false")
    return ReferrerRequirement(artifact_type, signed)


def _keyless(value: Mapping[str, Any]) -> KeylessPolicy | None:
    rules = value.get("keyless")
    root = value.get("trusted_root")
    if rules is None:
        if root is not None:
            raise InvalidInputError("verify.trusted_root is for keyless signatures; give verify.keyless too")
        return None
    if not isinstance(rules, (list, tuple)) or not rules:
        raise InvalidInputError("verify.keyless must be a list of {identity or identity_regex, issuer or issuer_regex}")
    if root is not None and (not isinstance(root, str) or not root.strip()):
        raise InvalidInputError("verify.trusted_root must be the path of a Sigstore trusted_root.json")
    path = root.strip() if isinstance(root, str) else None
    return KeylessPolicy(tuple(_keyless_rule(entry, position) for position, entry in enumerate(rules)),
                         None if path == PUBLIC_GOOD else path)


def _keyless_rule(entry: Any, position: int) -> KeylessRule:
    where = f"verify.keyless[{position}]"
    if not isinstance(entry, Mapping):
        raise InvalidInputError(f"{where} must be a dictionary with identity (or identity_regex) and issuer")
    given = {name: item for name, item in entry.items() if item is not None}
    unknown = sorted(set(given) - set(KEYLESS_FIELDS))
    if unknown:
        raise InvalidInputError(f"{where} has unknown option(s) {', '.join(unknown)}; known: "
                                + ", ".join(KEYLESS_FIELDS))
    for part in ("identity", "issuer"):
        exact, pattern = given.get(part), given.get(f"{part}_regex")
        if (exact is None) == (pattern is None):
            raise InvalidInputError(f"{where} needs exactly one of {part} and {part}_regex")
        text = exact if exact is not None else pattern
        if not isinstance(text, str) or not text:
            raise InvalidInputError(f"{where}.{part if exact is not None else part + '_regex'} must be non-empty text")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InvalidInputError(f"{where}.{part}_regex is not a regular expression ({exc})") from None
    return KeylessRule(given.get("identity"), given.get("identity_regex"), given.get("issuer"),
                       given.get("issuer_regex"))


def _notation(value: Mapping[str, Any]) -> Any:
    block = value.get(NOTATION)
    return None if block is None else parse_notation(block)


#: Trust kinds beside ``keys`` (see the module text); a new kind adds one entry here and its fields'
#: argument spec to ``spec.TRUST_KIND_SPECS`` (``verify/spec.py``), where a run without ``verify``
#: finds the spec without loading any parser.
TRUST_KINDS: dict[str, TrustKind] = {
    name: TrustKind(tuple(TRUST_KIND_SPECS[name]), parse, TRUST_KIND_SPECS[name])
    for name, parse in (("keyless", _keyless), (NOTATION, _notation))
}
