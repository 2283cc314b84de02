# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The argument spec of ``verify`` (plain data): the one home of its fields, apart from their parsing.

``registry_tag`` and ``registry_copy`` need the spec for every run and the parser (``policy.py``,
``notation/spec.py``) only when ``verify`` is set. Under Ansible every file a run imports is compiled
on every run, so the spec lives here alone: the parsers import their fields and choices from here, and
a trust kind (``policy.TRUST_KINDS``) adds its fields to :data:`TRUST_KIND_SPECS`.
"""
from __future__ import annotations

from typing import Any

REQUIREMENTS = ("signature", "attestation")
INDEX_MODES = ("self", "children", "both")
KEYLESS_FIELDS = ("identity", "identity_regex", "issuer", "issuer_regex")
#: The name of the Notation trust kind (its field under ``verify``).
NOTATION = "notation"

#: ``verify.notation`` (its parser is ``notation/spec.py``).
NOTATION_SPEC: dict[str, Any] = {
    "type": "dict",
    "options": {
        "trust_store": {"type": "list", "elements": "str", "required": True, "no_log": False},
        "trusted_identities": {"type": "list", "elements": "str", "required": True},
        "registry_scopes": {"type": "list", "elements": "str", "required": True},
    },
}

#: The fields each trust kind beside ``keys`` owns, with their spec (``policy.TRUST_KINDS`` parses them).
TRUST_KIND_SPECS: dict[str, dict[str, Any]] = {
    "keyless": {
        "keyless": {
            # identities, not secrets: the name only contains "key"
            "type": "list", "elements": "dict", "no_log": False,
            "options": {name: {"type": "str"} for name in KEYLESS_FIELDS},
        },
        "trusted_root": {"type": "path"},
    },
    NOTATION: {NOTATION: NOTATION_SPEC},
}

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
        **{name: spec for kind in TRUST_KIND_SPECS.values() for name, spec in kind.items()},
    },
}
