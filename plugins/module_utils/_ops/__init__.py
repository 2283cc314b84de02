# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Operations: one room per operation, each returning plain data (a plan or a result).

Private to this collection (may change without notice). Imports: ``_client`` and ``_model``;
never ``_glue`` or ``ansible``. Planners (``*/plan.py``, ``*/policy.py``) are pure and import no
operation and no client.
"""
