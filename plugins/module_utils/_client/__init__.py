# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The registry client: HTTP and the Distribution spec, nothing of Ansible.

Private to this collection (may change without notice). Imports: ``_model``, the standard
library and ``requests``; never ``_ops`` or ``_glue``, never ``ansible``.
"""
