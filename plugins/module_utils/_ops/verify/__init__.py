# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verification: promote or copy only images that carry the signatures and referrers asked for.

``spec.py`` (plain data) is the ``verify`` option's argument spec, all a run without ``verify`` loads;
``policy.py`` (pure) reads the option; ``signatures.py`` (pure) says what a cosign or
sigstore signature claims and whether a given key made it; ``check.py`` reads an image's
signatures (cosign tag scheme and OCI 1.1 referrers) and applies the policy, with reads only.
"""
