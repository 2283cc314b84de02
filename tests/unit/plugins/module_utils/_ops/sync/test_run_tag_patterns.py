"""TagPatterns: registry_copy's ``tags`` as a choice of the mirror engine (pure)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
    SyncOptions,
    TagPatterns,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
REFERRER = "sha256-" + "a" * 64
SIGNATURE = REFERRER + ".sig"


def test_any_pattern_selects_sorted_and_each_decision_says_why() -> None:
    choice = TagPatterns([r"1\..*", "dev"], skip_referrer_tags=False)
    selection = choice.select(["dev", "2.0", "1.1", "1.0"], {}, NOW)
    assert selection.selected == ["1.0", "1.1", "dev"]
    reasons = {d.tag: d.reason for d in selection.decisions}
    assert reasons == {"1.0": "matches '1\\\\..*'", "1.1": "matches '1\\\\..*'", "2.0": "matches no pattern",
                       "dev": "matches 'dev'"}
    assert choice.describe() == {"tags": [r"1\..*", "dev"]} and not choice.needs_ages


def test_referrer_tags_travel_with_their_image_only_with_referrers() -> None:
    tags = ["v1", REFERRER, SIGNATURE]
    assert TagPatterns([".*"], skip_referrer_tags=False).select(tags, {}, NOW).selected == sorted(tags)
    assert TagPatterns([".*"], skip_referrer_tags=True).select(tags, {}, NOW).selected == ["v1"]


def test_a_pattern_that_selects_nothing_is_one_warning_and_a_note() -> None:
    choice = TagPatterns(["zzz"], skip_referrer_tags=False)
    warnings, notes = choice.warnings("h/app", ["1.0"], choice.select(["1.0"], {}, NOW))
    assert len(warnings) == 1 and "tags pattern 'zzz' selects none of the 1 tag" in warnings[0], warnings
    assert notes == ["no tag of h/app matches zzz"]


def test_a_mirror_that_selects_nothing_without_an_unmatched_pattern_still_warns() -> None:
    # '.*' matches the referrer tag, which travels with its image only: nothing is selected.
    choice = TagPatterns([".*"], skip_referrer_tags=True)
    warnings, _notes = choice.warnings("h/app", [SIGNATURE], choice.select([SIGNATURE], {}, NOW))
    assert warnings == ["the mirror selects no tag of h/app (1 tag(s)), so nothing was copied"]


@pytest.mark.parametrize("patterns, message", [([], "at least one tags pattern"), (["("], "not a valid regular")])
def test_bad_patterns_fail_before_any_request(patterns, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        TagPatterns(patterns, skip_referrer_tags=False)


def test_blob_streams_follow_the_tags_in_flight() -> None:
    # One tag streams as many blobs as a single copy; many tags share 16 connections per registry.
    assert SyncOptions(concurrency=8).blob_concurrency(1) == 8
    assert SyncOptions(concurrency=8).blob_concurrency(50) == 2
    assert SyncOptions(concurrency=64).blob_concurrency(64) == 1
