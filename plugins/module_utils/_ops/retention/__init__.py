# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retention: policy, plan, in_use and verdicts (pure), snapshot (reads), apply (writes), prune (the whole run).
"""
