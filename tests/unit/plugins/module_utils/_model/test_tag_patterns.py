"""Unit tests for _model/tag_patterns.py: a pattern that selects nothing is named, with a hint for search regexes."""
from __future__ import annotations

from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_patterns import (
    unmatched_regexes,
)


def test_each_pattern_selecting_no_tag_is_named_once_with_its_hint():
    warnings = unmatched_regexes(["v1", "build-42"], ["v.*", "^build-", "nope", "("], "team/app")
    assert warnings == [
        "tags pattern '^build-' selects none of the 2 tag(s) in team/app; patterns match the whole tag, so ^ and $ "
        "are not needed: write 'build-' for exactly that tag or 'build-.*' for tags starting with it",
        "tags pattern 'nope' selects none of the 2 tag(s) in team/app; patterns match the whole tag: for tags "
        "starting with it write 'nope.*'",
    ]


def test_no_tags_no_warnings():
    assert unmatched_regexes([], ["x"], "team/app") == []
