# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mirroring: which repositories go where and which runner mirrors them (``spec.py``, pure; the
tags come from ``_model/tag_selection.py``), the run itself (``run.py``: the one mirror engine of
every ``registry_copy`` mirror, over registries and layouts, on one bounded pool; exact mirrors,
no-clobber, rate limits, progress), and a fleet's account of what its runners mirrored
(``fleet.py``, pure).
"""
