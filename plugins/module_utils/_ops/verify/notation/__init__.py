# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Notation (Notary Project) signatures in the ``verify`` gate.

``spec.py`` (pure) reads ``verify.notation``; ``envelope.py`` (pure) reads JWS and COSE envelopes
(``cbor.py`` decodes the CBOR of COSE) and checks one against a policy and trusted certificates;
``gate.py`` is the trust kind's side of the gate (``check.py``): it reads the trust store files
(``check.TRUST_LOADERS``) and checks one Notation referrer (``check.REFERRER_CHECKERS``), reads only.
"""
