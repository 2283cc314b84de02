# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Distribution's link-file race: how to recognise it, and the one bounded, announced retry for it.

Distribution's filesystem storage rewrites a link file in place (truncate, then write) whenever a
blob, manifest or tag is pushed again. A request that reads that link at that instant is refused:

- a manifest ``PUT`` that validates its references answers 400 ``DIGEST_INVALID``,
  ``MANIFEST_BLOB_UNKNOWN`` or ``BLOB_UNKNOWN`` (two mirrors of one image into one repository:
  tests/integration/test_races.py);
- a manifest ``DELETE`` removes the manifest and then walks the tags to untag it; a push rewriting a
  tag link meanwhile makes it answer 400 ``DIGEST_INVALID`` (docs/guide_parallel.md).

The refusal lasts only as long as the rewrite, so a short pause ends it; one that outlasts
:data:`RELINK_PAUSES` is real. Whether a request may be sent again is the caller's call: a ``PUT``
of the same bytes is idempotent, and so is a ``DELETE`` of a digest no other tag can hold (the prune
lease). A ``DELETE`` of a user's manifest is never sent again blindly (a push may be landing on that
very manifest): its caller reads what the registry holds instead (:func:`is_relink_refusal`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    RegistryError,
)

#: The error codes Distribution answers (with HTTP 400) when it read a link file another writer was rewriting.
RELINK_CODES = frozenset({"DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"})
#: Pauses before each send after the first: long enough for a local write to finish, short next to a copy.
#: A loaded machine can keep a rewrite in flight past one pause: 50, 150, 450 ms, then it is real.
RELINK_PAUSES = (0.05, 0.15, 0.45)

_T = TypeVar("_T")


def is_relink_refusal(err: RegistryError) -> bool:
    """True when ``err`` is the registry refusing a request because it read a link file mid-rewrite."""
    return err.status == 400 and err.code in RELINK_CODES


def retry_relink(send: Callable[[], _T], *, what: str, sleep: Callable[[float], None],
                 announce: Callable[[str], None]) -> _T:
    """``send()``, sent again after each of :data:`RELINK_PAUSES` while the registry refuses it mid-rewrite.

    Only for a request that may be sent again as it is (see the module docstring). The first wait is
    announced (``announce`` gets one line naming ``what`` and the longest the waits can take); any
    other error, and a refusal that outlasts the last pause, is raised as it came.
    """
    for attempt, pause in enumerate((*RELINK_PAUSES, None)):
        try:
            return send()
        except RegistryError as err:
            if pause is None or not is_relink_refusal(err):
                raise
            if attempt == 0:
                announce(f"{what}: the registry refused it (HTTP 400 {err.code}) while another writer was rewriting "
                         f"one of its link files; sent again after a pause (at most {sum(RELINK_PAUSES):.2f} s in all)")
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover - the last send returns or raises
