# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Many failures told in one line: each cause once, with the first few names it hit, then counts.

A mirror of hundreds of tags that all fail for one reason (a destination that wants credentials)
should say that reason once, not hide it in the result nor repeat it hundreds of times.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

#: Causes told in full; the failures of the others are counted. A message is read, not parsed:
#: every failure stays in the result data.
SHOWN_CAUSES = 3
#: Names listed for one cause before "and N more".
SHOWN_NAMES = 3


def _names(names: list[str], shown: int) -> str:
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def _masked(cause: str, token: str | None, placeholder: str) -> str:
    """``cause`` with ``token`` (as a whole word after ``:``, ``@`` or a space) replaced by ``placeholder``."""
    if not token:
        return cause
    return re.sub(rf"(?<=[:@ ]){re.escape(token)}(?![\w.-])", placeholder, cause)


def summarize_failures(failures: Iterable[tuple[str, str, str | None]], *, causes: int = SHOWN_CAUSES,
                       names: int = SHOWN_NAMES, placeholder: str = "<tag>") -> str:
    """``a, b, c and 2 more: <cause>; d: <other cause>; and 4 more failed for other reasons``.

    ``failures`` are ``(name, cause, token)`` triples in the order to tell them. Causes are
    grouped by their text with ``token`` (the tag a cause mentions, such as ``resolve app:1.0``)
    replaced by ``placeholder``, so one reason that hit many tags is told once (a reason that hit
    one tag keeps its tag); groups keep the order of first appearance.
    """
    grouped: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for name, cause, token in failures:
        masked = _masked(cause, token, placeholder)
        grouped.setdefault(masked, []).append(name)
        first.setdefault(masked, cause)
    # A cause that hit one name is told as it was: the placeholder stands for several names only.
    told = [f"{_names(hit, names)}: {first[cause] if len(hit) == 1 else cause}"
            for cause, hit in list(grouped.items())[:causes]]
    rest = sum(len(hit) for hit in list(grouped.values())[causes:])
    if rest:
        told.append(f"and {rest} more failed for other reasons")
    return "; ".join(told)
