# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``max_entries`` / ``max_bytes`` options of the modules that expand layers (registry_unpack, registry_artifact).

Their defaults live once, in ``_ops.unpack.entries`` next to the checker that enforces them;
the modules' argument specs and :class:`Limits` both come from here.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._ops.unpack.entries import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ENTRIES,
    Limits,
)

__all__ = ["limits_argument_spec", "limits_from"]


def limits_argument_spec() -> dict[str, Any]:
    """Argument spec of ``max_entries`` and ``max_bytes``, with the policy's defaults."""
    return {
        "max_entries": {"type": "int", "default": DEFAULT_MAX_ENTRIES},
        "max_bytes": {"type": "int", "default": DEFAULT_MAX_BYTES},
    }


def limits_from(params: Mapping[str, Any], *, allow_devices: bool = False, allow_setuid: bool = False) -> Limits:
    """The :class:`Limits` a module's params ask for (the ``allow_*`` flags only registry_unpack has)."""
    return Limits(max_entries=params["max_entries"], max_bytes=params["max_bytes"],
                  allow_devices=allow_devices, allow_setuid=allow_setuid)
