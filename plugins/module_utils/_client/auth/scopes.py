# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The token scopes every request names (distribution token spec): pure.

Apart from :mod:`.challenge` because every request needs its scopes and only a 401 needs the challenge
parser: under Ansible each file a run imports is compiled on every run, and a read of an open registry
never sees a 401. :mod:`.challenge` reads and compares scopes; this module builds them.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)

REGISTRY_CATALOG_SCOPE = "registry:catalog:*"
#: An action of a scope (``pull``, ``push``, ``delete``, ``*``).
ACTION_RE = re.compile(r"[a-z0-9_*\-]+")


def scope_for(repository: str, actions: Iterable[str]) -> str:
    """The token scope for ``actions`` on ``repository``: ``repository:team/app:pull,push``."""
    wanted = sorted(set(actions))
    if not repository or any(c.isspace() for c in repository) or repository != repository.strip("/"):
        raise InvalidInputError(f"cannot build a token scope for repository {repository!r}: give a repository name like team/app")
    if not wanted or not all(ACTION_RE.fullmatch(a) for a in wanted):
        raise InvalidInputError(f"cannot build a token scope with actions {wanted!r}: use pull, push, delete or *")
    return f"repository:{repository}:{','.join(wanted)}"
