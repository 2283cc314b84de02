"""A fleet's account of a sync specification: every repository, the runner that owns it, its outcome."""
from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.fleet import (
    Fleet,
    account,
    first_sentence,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    owner,
)

RUNNERS = ("r1", "r2", "r3")
SOURCES = [f"src.example/fleet/app{i}" for i in range(9)]
SPEC = [{"src": SOURCES, "dest": "m.example/mirror", "naming": "flat"}]


def dest(source: str) -> str:
    return "m.example/mirror/" + source.rsplit("/", 1)[1]


def repository(source: str, **outcome: Any) -> dict[str, Any]:
    """registry_copy's entry for one repository (only the keys the account reads)."""
    entry = {"src": source, "dest": dest(source), "error": None, "failed": [], "drift": [], "not_attempted": [],
             "line": f"{source} -> {dest(source)}: 1 copied, 0 already present, 0 failed"}
    entry.update(outcome)
    return entry


def reports_for(runners: list[str], **override: Any) -> dict[str, Any]:
    """Every runner's registry_copy result for its share, all copied, unless ``override`` says otherwise."""
    reports: dict[str, Any] = {}
    for runner in runners:
        share = [repository(s) for s in SOURCES if owner(s, runners) == runner]
        reports[runner] = {"failed": False, "changed": True, "repositories": share}
    reports.update(override)
    return reports


def summary(reports, runners=RUNNERS, live=RUNNERS, in_play=RUNNERS, running=RUNNERS, reporter="r1", check=False):
    return account(SPEC, Fleet(runners, set(live), set(in_play), set(running), reporter), reports, check)


def line_of(result: dict[str, Any], source: str) -> str:
    (line,) = [line for line in result["lines"][1:-1] if f" {source} -> " in line]
    return line


def owned_by(runner: str, runners: tuple[str, ...] = RUNNERS) -> list[str]:
    return [s for s in SOURCES if owner(s, runners) == runner]


def busiest() -> str:
    return max(RUNNERS, key=lambda r: len(owned_by(r)))


def test_every_repository_reported_is_every_repository_mirrored():
    result = summary(reports_for(RUNNERS))
    assert result["complete"] and result["not_mirrored"] == [] and result["failures"] == {}
    assert result["lines"][0] == "Mirror summary: 9 repositories, 3 runners (r1, r2, r3)"
    assert result["lines"][-1] == "Every repository mirrored"
    for source in SOURCES:
        assert line_of(result, source).startswith(f"{owner(source, RUNNERS)}: {source} -> {dest(source)}: 1 copied")


def test_empty_outcome_lists_are_not_failures_but_any_tag_left_over_is():
    dead_tag = owned_by("r2")[0]
    reports = reports_for(RUNNERS)
    for runner, report in reports.items():
        report["repositories"] = [repository(r["src"], not_attempted=["1.0"]) if r["src"] == dead_tag else r
                                  for r in report["repositories"]]
    result = summary(reports)
    assert result["not_mirrored"] == [dead_tag] and list(result["failures"]) == ["r2"]
    assert result["lines"][-1].startswith(f"1 of 9 repositories not mirrored: {dead_tag}.")


def test_a_runner_that_stopped_without_a_report_is_named_by_the_reporter():
    dying = busiest()
    reporter = next(r for r in RUNNERS if r != dying)
    result = summary(reports_for(RUNNERS, **{dying: None}), running=[r for r in RUNNERS if r != dying],
                     reporter=reporter)
    assert result["not_mirrored"] == owned_by(dying)
    assert list(result["failures"]) == [reporter] and len(result["failures"][reporter]) == len(owned_by(dying))
    for source in owned_by(dying):
        assert f"not mirrored: {dying} stopped during its share" in line_of(result, source)
    assert not result["complete"] and "Every repository mirrored" not in result["lines"]
    assert result["lines"][-1].endswith("Run the same play again: only what is missing is copied")


def test_a_runner_unreachable_at_its_copy_is_named_with_the_cause():
    dying = busiest()
    unreachable = {"unreachable": True, "changed": False,
                   "msg": "Task failed: Failed to create temporary directory. In some cases, you may ...\nmore"}
    running = [r for r in RUNNERS if r != dying]
    result = summary(reports_for(RUNNERS, **{dying: unreachable}), running=running, reporter=running[0])
    for source in owned_by(dying):
        assert line_of(result, source).endswith(
            f"not mirrored: {dying} became unreachable during its share: Task failed: Failed to create temporary "
            "directory.")
    assert list(result["failures"]) == [running[0]]


def test_a_copy_that_failed_whole_fails_its_own_runner():
    runner = busiest()
    result = summary(reports_for(RUNNERS, **{runner: {"failed": True, "msg": "dest_auth: 401 Unauthorized"}}))
    long = summary(reports_for(RUNNERS, **{runner: {"failed": True, "msg": "x" * 500}}))
    assert all(len(line) < 300 for line in long["lines"]), long["lines"]
    assert list(result["failures"]) == [runner]
    for source in owned_by(runner):
        assert f"{runner}'s copy failed before this repository: dest_auth: 401 Unauthorized" in line_of(result, source)


def test_a_pinned_runner_down_before_the_role_keeps_its_share_and_fails_the_run():
    down = busiest()
    live = [r for r in RUNNERS if r != down]
    result = summary(reports_for(RUNNERS, **{down: None}), live=live, running=live, reporter=live[0])
    assert result["not_mirrored"] == owned_by(down) and list(result["failures"]) == [live[0]]
    assert f"down before the role but pinned in mirror_runners: {down}" in result["lines"][0]
    for source in owned_by(down):
        assert f"not mirrored: {down} was down when the role started" in line_of(result, source)


def test_the_default_fleet_reports_a_runner_down_before_the_role_as_taken_over():
    down = busiest()
    live = [r for r in RUNNERS if r != down]
    result = summary(reports_for(live), runners=live, live=live, running=live)
    assert result["complete"] and result["lines"][-1] == "Every repository mirrored"
    assert result["lines"][0] == (f"Mirror summary: 9 repositories, 2 runners ({', '.join(live)}); down before the "
                                  f"role, their share went to the live runners: {down}")


def test_runners_outside_the_play_are_named_and_left_to_their_own_play():
    pinned = [*RUNNERS, "r4"]
    result = summary(reports_for(pinned), runners=pinned)
    elsewhere = owned_by("r4", pinned)
    assert elsewhere, "r4 should own some of nine repositories"
    for source in elsewhere:
        assert line_of(result, source).endswith(": left to r4, a runner outside this play")
    assert result["failures"] == {} and result["not_mirrored"] == [] and not result["complete"]
    assert result["lines"][-1] == (f"All {9 - len(elsewhere)} repositories of this play's runners mirrored; "
                                   f"{len(elsewhere)} left to runners outside this play")


def test_check_mode_does_not_claim_a_mirror():
    result = summary(reports_for(RUNNERS), check=True)
    assert result["lines"][-1] == "Every repository checked (check mode: nothing written)"


def test_a_bad_spec_is_one_error():
    with pytest.raises(InvalidInputError, match=r"mirror_spec\[0\]: dest 'nohost' must start with a registry host"):
        account([{"src": "a.example/x", "dest": "nohost"}], Fleet(RUNNERS, RUNNERS, RUNNERS, RUNNERS, "r1"), {})


def test_a_cause_is_its_first_sentence_within_the_limit():
    assert first_sentence("Task failed: no shell. Consider this.\nmore") == "Task failed: no shell."
    assert first_sentence("x" * 500, limit=20) == "x" * 19 + "…"
    assert first_sentence("") == ""
