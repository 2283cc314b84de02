# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading bytes that must hold one JSON object: what the registry, a token service, a
credential helper or a signature envelope answers.

Each caller raises its own error type in its own words, but what counts as "not JSON"
and "not an object", and how that is said, is decided here once.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

#: What was found instead, for the caller's message ("... answered with <found>").
NOT_JSON = "something that is not JSON"
NOT_AN_OBJECT = "JSON that is not an object"


def json_object(raw: bytes | str, fail: Callable[[str], Exception]) -> dict[str, Any]:
    """The JSON object in ``raw``; else raise ``fail(found)`` with :data:`NOT_JSON` or :data:`NOT_AN_OBJECT`.

    Bytes that are not valid text count as not JSON (``UnicodeDecodeError`` is a
    ``ValueError``). The document itself is never put in the message: it may hold secrets.
    """
    try:
        document = json.loads(raw)
    except ValueError:
        raise fail(NOT_JSON) from None
    if not isinstance(document, dict):
        raise fail(NOT_AN_OBJECT)
    return document
