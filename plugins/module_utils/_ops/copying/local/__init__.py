# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Local copy targets: OCI image layout directories and oci-archive tars.

A store (:class:`~.layout.LayoutDir`, :class:`~.archive.OciArchive`) holds
blobs and the ``index.json`` entries; a :class:`~.layout.LayoutView` shows one
repository of a store with the methods the copy engine calls on a registry
``Repository``, so every copy direction runs through the same engine.
"""
