# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``images_in_use`` filter: the image references running workloads name, for ``registry_prune``'s
``in_use`` (reads ``_model/workload_images.py``)."""
from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.workload_images import (
    images_in,
)


def images_in_use(sources: Any) -> list[str]:
    """Every image reference or digest in ``sources`` (k8s_info results, Kubernetes objects, lists, mappings)."""
    try:
        return images_in(sources, "images_in_use")
    except InvalidInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """The collection's retention filters."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function."""
        return {"images_in_use": images_in_use}
