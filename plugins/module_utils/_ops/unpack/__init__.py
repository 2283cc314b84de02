# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unpack: an image's flattened filesystem onto the host, safely.

``entries.py`` (pure) checks each tar entry; ``apply.py`` resolves paths inside the destination
without following symlinks out, applies layers with whiteouts, and swaps a complete tree in.
"""
