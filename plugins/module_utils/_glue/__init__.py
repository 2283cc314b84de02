# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The only Ansible-aware code: option table -> clients, errors -> fail_json, diffs.

Private to this collection (may change without notice). Imports: everything below it.
"""
