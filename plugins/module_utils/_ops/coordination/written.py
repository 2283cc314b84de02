# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a writer wrote, as the prune lease check (:func:`.lease.honour_leases`) reads it.

Apart from :mod:`.lease` because every copy records its tags this way, while only a run with the
opt-in ``prune_lease`` loads the lease code itself.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Written:
    """A tag a writer wrote, with the bytes to write it again: ``children`` (digest, raw, media type) first."""

    tag: str
    digest: str
    raw: bytes
    media_type: str
    children: tuple[tuple[str, bytes, str], ...] = ()
