# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``verify.notation``: the trust policy of a Notation gate, as the user writes it (pure).

::

    verify:
      notation:                     # a trust kind (policy.TRUST_KINDS): an accepted one is a signature
        trust_store: [PEM text, or a path: a PEM/DER file or a directory of .pem/.crt/.cer]
        trusted_identities: ["x509.subject: C=US, ST=WA, O=acme, CN=release"]   # or ["*"]
        registry_scopes: [registry.example.com/team/app]                         # or ["*"]

The Notary Project trust policy (trust-store-trust-policy.md) with one statement, at verification
level ``strict``: its ``registryScopes``, ``trustedIdentities`` and one ``ca`` trust store.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.spec import (
    NOTATION,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.spec import (
    NOTATION_SPEC as OPTION_SPEC,
)

__all__ = ["NOTATION", "OPTION_SPEC", "NotationPolicy", "canonical_repository", "parse_dn", "parse_notation"]
_FIELDS = tuple(OPTION_SPEC["options"])


@dataclass(frozen=True)
class NotationPolicy:
    """``verify.notation``: a trust store, the trusted identities and the registry scopes."""

    trust_store: tuple[str, ...]
    trusted_identities: tuple[tuple[tuple[str, str], ...], ...]  # empty tuple: '*'
    registry_scopes: tuple[str, ...]  # ('*',) for the global scope

    @property
    def any_identity(self) -> bool:
        return not self.trusted_identities


def parse_notation(value: Any) -> NotationPolicy:
    """``verify.notation`` as a :class:`NotationPolicy`; one :class:`InvalidInputError` line when malformed."""
    if not isinstance(value, Mapping):
        raise InvalidInputError("verify.notation must be a dictionary with trust_store, trusted_identities "
                                "and registry_scopes")
    unknown = sorted(set(value) - set(_FIELDS))
    if unknown:
        raise InvalidInputError(f"verify.notation has unknown option(s) {', '.join(unknown)}; "
                                f"known: {', '.join(_FIELDS)}")
    store = _strings(value, "trust_store")
    identities = _strings(value, "trusted_identities")
    scopes = _strings(value, "registry_scopes")
    if "*" in scopes and len(scopes) > 1:
        raise InvalidInputError("verify.notation.registry_scopes: '*' (every repository) stands alone")
    for scope in scopes:
        if scope != "*" and ("*" in scope or "/" not in scope):
            raise InvalidInputError(f"verify.notation.registry_scopes has {scope!r}: give fully qualified "
                                    "repositories (registry.example.com/team/app) or '*'")
    if "*" in identities:
        if len(identities) > 1:
            raise InvalidInputError("verify.notation.trusted_identities: '*' (any certificate the trust store "
                                    "issued) stands alone")
        parsed: tuple[tuple[tuple[str, str], ...], ...] = ()
    else:
        parsed = tuple(_identity(item, position) for position, item in enumerate(identities))
        _check_overlap(identities, parsed)
    return NotationPolicy(tuple(store), parsed, tuple(_scope(s) for s in scopes))


def _strings(value: Mapping[str, Any], name: str) -> list[str]:
    entries = value.get(name)
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, (list, tuple)) or not entries:
        raise InvalidInputError(f"verify.notation.{name} must be a non-empty list")
    if not all(isinstance(item, str) and item.strip() for item in entries):
        raise InvalidInputError(f"verify.notation.{name} must list non-empty strings")
    return [item.strip() for item in entries]


def _identity(text: str, position: int) -> tuple[tuple[str, str], ...]:
    where = f"verify.notation.trusted_identities[{position}]"
    prefix, sep, dn = text.partition(":")
    if not sep or prefix.strip() != "x509.subject":
        raise InvalidInputError(f"{where} must be 'x509.subject: C=.., ST=.., O=..' (or '*' alone)")
    try:
        rdns = parse_dn(dn)
    except ValueError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None
    names = {name for name, _value in rdns}
    if not {"C", "O"} <= names or "ST" not in names:
        raise InvalidInputError(f"{where} must name at least C, ST (or S) and O, as the Notary Project requires")
    return rdns


def _check_overlap(texts: Sequence[str], parsed: Sequence[tuple[tuple[str, str], ...]]) -> None:
    # The spec forbids identities one certificate could match twice: one's RDNs within another's.
    for i, first in enumerate(parsed):
        for j, second in enumerate(parsed):
            if i < j and (set(first) <= set(second) or set(second) <= set(first)):
                raise InvalidInputError(f"verify.notation.trusted_identities {texts[i]!r} and {texts[j]!r} overlap "
                                        "(a certificate matching one of them may match both); keep one")


def parse_dn(text: str) -> tuple[tuple[str, str], ...]:
    """``C=US, ST=WA, O=acme`` as ``(("C", "US"), ("ST", "WA"), ("O", "acme"))``; ``S`` is read as ``ST``.

    Escapes as the spec writes them: ``\\,`` ``\\;`` ``\\\\`` and ``\\ `` for a leading or trailing space.
    """
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\0" + char)  # kept apart from the separators, unmarked below
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",;":
            parts.append(current)
            current = []
        else:
            current.append(char)
    if escaped:
        raise ValueError("the distinguished name ends in a lone backslash")
    parts.append(current)
    rdns: list[tuple[str, str]] = []
    for chars in parts:
        text_part = "".join(chars)
        name, sep, value = text_part.partition("=")
        name = name.strip().upper()
        value = _unescape(value)
        if not sep or not name or not value or "\0" in name:
            raise ValueError(f"{_unescape(text_part)!r} is not an ATTRIBUTE=value pair")
        name = "ST" if name == "S" else name
        if any(existing == name for existing, _v in rdns):
            raise ValueError(f"the distinguished name names {name} twice")
        rdns.append((name, value))
    return tuple(rdns)


def _unescape(text: str) -> str:
    # Unescaped spaces around a value are insignificant; escaped ones ("\0 ") are kept.
    return text.strip(" ").replace("\0", "")


def _scope(text: str) -> str:
    return text if text == "*" else canonical_repository(text)


def canonical_repository(text: str) -> str:
    host, _sep, name = text.partition("/")
    host = host.lower()
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = "docker.io"
    return f"{host}/{name}"
