# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure values and decisions: references, digests, media types, manifests, tag schemes, ordering, tag selection,
errors.

Private to this collection (may change without notice). Imports: the standard library and
other ``_model`` modules only. No I/O of any kind.
"""
