"""Unit tests for _model/semver_range.py: npm-style ranges over version tags."""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.semver_range import (
    parse_semver_range,
    version_key,
)


def admits(range_text, tag):
    key = version_key(tag)
    return key is not None and parse_semver_range(range_text).admits(key)


@pytest.mark.parametrize("range_text, inside, outside", [
    (">=1.20 <2", ["1.20", "1.20.0", "v1.25.3", "1.99.99"], ["1.19.9", "2.0.0", "2", "0.1"]),
    ("^1.2", ["1.2.0", "1.9.9", "v1.2.7"], ["1.1.9", "2.0.0"]),
    ("^0.2", ["0.2.0", "0.2.9"], ["0.3.0", "0.1.9"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
    ("~1.2", ["1.2.0", "1.2.99"], ["1.3.0", "1.1.0"]),
    ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
    ("1.2.x", ["1.2.0", "1.2.5"], ["1.3.0"]),
    ("1.2", ["1.2.0", "1.2.5"], ["1.3.0"]),
    ("=1.2.3", ["1.2.3", "v1.2.3"], ["1.2.4"]),
    ("*", ["0.0.1", "9.9.9"], []),
    (">1.2", ["1.3.0"], ["1.2.9", "1.2.0"]),
    ("<=1.2", ["1.2.9", "1.0.0"], ["1.3.0"]),
    (">= 1.2.3 < 1.3", ["1.2.3", "1.2.4"], ["1.2.2", "1.3.0"]),
    ("<1.0 || >=3", ["0.9.0", "3.0.0", "4.1"], ["1.0.0", "2.5.0"]),
])
def test_ranges(range_text, inside, outside):
    for tag in inside:
        assert admits(range_text, tag), (range_text, tag)
    for tag in outside:
        assert not admits(range_text, tag), (range_text, tag)


@pytest.mark.parametrize("text", ["", "   ", ">=1.2 ||", "abc", ">=1.x.3-rc", ">*", "1.2 - 1.4", "1.2.3.4"])
def test_bad_ranges(text):
    with pytest.raises(InvalidInputError, match="semver:.*is not a version range"):
        parse_semver_range(text)
