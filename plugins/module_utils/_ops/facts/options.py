# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation of the facts options (include, platform) before any request.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Platform,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    pass


#: What ``include`` may ask for on top of the manifest facts.
INCLUDE_CHOICES = ("config", "layers", "referrers", "tags", "raw")


# -- pure: options -----------------------------------------------------------------------
def check_include(include: Iterable[str] | None) -> tuple[str, ...]:
    """Validate ``include`` values, keeping their order and dropping repeats."""
    found: list[str] = []
    for item in include or ():
        if item not in INCLUDE_CHOICES:
            raise InvalidInputError(
                f"include: unknown value {item!r}: use any of {', '.join(INCLUDE_CHOICES)}"
            )
        if item not in found:
            found.append(item)
    return tuple(found)


def check_platform(platform: str | None) -> str | None:
    """Validate a ``platform`` option (``os/arch[/variant]``) before any request; None stays None."""
    if platform is None or platform == "":
        return None
    Platform.parse(platform)  # raises, saying what is wrong
    return platform
