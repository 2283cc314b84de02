# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Artifacts: files in and out of registries, the way oras stores them.

``layers.py`` (pure) builds the artifact manifest and reads one back into file targets;
``pack.py`` streams a directory as a reproducible tar+gzip; ``transfer.py`` pushes, pulls and
attaches artifacts and moves single blobs to and from files.
"""
