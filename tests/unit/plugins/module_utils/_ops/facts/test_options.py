"""registry_manifest_info's option checks (_ops/facts/options.py)."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.options import check_include


def test_include_is_checked_deduplicated_and_ordered():
    assert check_include(["tags", "config", "tags"]) == ("tags", "config")
    assert check_include(None) == ()
    with pytest.raises(InvalidInputError, match="include: unknown value 'labels'"):
        check_include(["labels"])
