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
      notation: {trust_store, trusted_identities, registry_scopes}   # with require: [notation]

:func:`parse_verify` turns the option (a plain mapping, as Ansible passes it) into a
:class:`VerifyPolicy` or raises one :class:`InvalidInputError` line saying what to fix.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.spec import (
    NOTATION,
    NotationPolicy,
    parse_notation,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.spec import (
    OPTION_SPEC as NOTATION_SPEC,
)

REQUIREMENTS = ("signature", "attestation", NOTATION)
INDEX_MODES = ("self", "children", "both")
_FIELDS = ("keys", "require", "annotations", "referrers", "index", "notation")
_REFERRER_FIELDS = ("artifact_type", "signed")
_PEM_MARK = "-----BEGIN"

#: The argument spec of ``verify`` (identical on registry_tag and registry_copy); plain data, so the
#: glue layer can put it into an ``AnsibleModule`` argument spec as it is.
OPTION_SPEC: dict[str, Any] = {
    "type": "dict",
    "options": {
        "keys": {"type": "list", "elements": "str", "no_log": False},
        "require": {"type": "list", "elements": "str", "choices": list(REQUIREMENTS), "default": ["signature"]},
        "annotations": {"type": "dict", "default": {}},
        "referrers": {
            "type": "list", "elements": "dict", "default": [],
            "options": {
                "artifact_type": {"type": "str", "required": True},
                "signed": {"type": "bool", "default": False},
            },
        },
        "index": {"type": "str", "choices": list(INDEX_MODES), "default": "self"},
        "notation": NOTATION_SPEC,
    },
}


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
    notation: NotationPolicy | None = None

    def needs_keys(self) -> bool:
        return any(kind != NOTATION for kind in self.require) or any(r.signed for r in self.referrers)


def parse_verify(value: Mapping[str, Any] | None) -> VerifyPolicy | None:
    """The policy the ``verify`` option asks for; None when it is not set."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"verify must be a dictionary (keys, require, ...), not {type(value).__name__}")
    unknown = sorted(set(value) - set(_FIELDS))
    if unknown:
        raise InvalidInputError(f"verify has unknown option(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
    keys = tuple(_key_source(entry, position) for position, entry in enumerate(_list(value, "keys")))
    require = _require(value.get("require", ["signature"]))
    annotations = _annotations(value.get("annotations"))
    referrers = tuple(_referrer(entry, position) for position, entry in enumerate(_list(value, "referrers")))
    index = value.get("index") or "self"
    if index not in INDEX_MODES:
        raise InvalidInputError(f"verify.index is {index!r}; choose one of {', '.join(INDEX_MODES)}")
    policy = VerifyPolicy(keys, require, annotations, referrers, index, _notation(value, require))
    if not policy.require and not policy.referrers:
        raise InvalidInputError("verify asks for nothing: give require (signature, attestation) or referrers")
    if policy.needs_keys() and not keys:
        raise InvalidInputError("verify needs keys: the public keys (PEM text or file paths) that signatures "
                                "must verify with")
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
        raise InvalidInputError(f"verify.require has {', '.join(map(repr, wrong))}; choose from "
                                + ", ".join(REQUIREMENTS))
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


# -- Notation (notation/spec.py): require: [notation] and the verify.notation block go together ---------
def _notation(value: Mapping[str, Any], require: tuple[str, ...]) -> NotationPolicy | None:
    block = value.get("notation")
    if block is None:
        if NOTATION in require:
            raise InvalidInputError("verify.require has notation: give verify.notation (trust_store, "
                                    "trusted_identities, registry_scopes)")
        return None
    if NOTATION not in require:
        raise InvalidInputError("verify.notation is set: add notation to verify.require")
    return parse_notation(block)
