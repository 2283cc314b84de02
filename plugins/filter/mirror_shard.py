# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of roles/mirror: a host's share of a sync specification, the fleet's summary, and an
entry's tags regex."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.selectors import (
    as_tag_patterns,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    expand_spec,
    owner,
    shard,
)

#: registry_copy's per-repository tag lists that make a repository a failure.
_FAILED_OUTCOMES = ("failed", "drift", "not_attempted")
#: The most of a runner's failure message each of its repositories' lines repeats.
_CAUSE_LIMIT = 160


def _host_list(value: Any, name: str, filter_name: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise AnsibleFilterError(f"{filter_name}: {name} must be a list of host names, got {value!r}")
    return [str(host) for host in value]


def mirror_shard(spec: Any, hosts: Any, me: str) -> list[dict[str, Any]]:
    """``me``'s share of ``spec`` among ``hosts``: one-source entries with the exact destination."""
    try:
        return shard(spec, _host_list(hosts, "hosts", "mirror_shard"), str(me))
    except InvalidInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


def _repository_failed(repository: Mapping[str, Any]) -> bool:
    """True when registry_copy's entry for one repository says some of it was not mirrored."""
    return bool(repository.get("error")) or any(bool(repository.get(key)) for key in _FAILED_OUTCOMES)


def _account(pair: Any, runner: str, live: set[str], reports: Mapping[str, Any]) -> tuple[str, bool]:
    """One repository's summary line (after ``runner: ``) and whether it was left not mirrored."""
    where = f"{pair.src} -> {pair.dest}"
    if runner not in live:
        return f"{where}: not mirrored: {runner} was down when the role started (pinned in mirror_runners)", True
    report = reports.get(runner)
    if not isinstance(report, Mapping):
        return f"{where}: not mirrored: {runner} stopped during its share (failed or unreachable)", True
    for repository in report.get("repositories") or ():
        if isinstance(repository, Mapping) and repository.get("src") == pair.src \
                and repository.get("dest") == pair.dest:
            return str(repository.get("line") or where), _repository_failed(repository)
    # The runner's result has no line for this repository: its copy failed as a whole, or never ran.
    cause = _first_sentence(str(report.get("msg") or "")) or "no result for it"
    if report.get("unreachable"):
        return f"{where}: not mirrored: {runner} became unreachable during its share: {cause}", True
    return f"{where}: not mirrored: {runner}'s copy failed before this repository: {cause}", True


def _first_sentence(text: str, limit: int = _CAUSE_LIMIT) -> str:
    """The first sentence of a message, at most ``limit`` characters: it is repeated on every line of a share."""
    first = text.strip().split("\n", 1)[0]
    end = first.find(". ")
    if end >= 0:
        first = first[:end + 1]
    return first if len(first) <= limit else first[:limit - 1] + "…"


def mirror_summary(spec: Any, runners: Any, reports: Any, live: Any, in_play: Any, running: Any,
                   reporter: str, check_mode: bool = False) -> dict[str, Any]:
    """The fleet's account of ``spec``: every repository, the runner that owns it, and its outcome.

    ``runners`` are the hosts the spec was sharded over, ``reports`` each live runner's
    ``registry_copy`` result (absent or None when it has none), ``live`` the hosts alive when the
    role started, ``in_play`` every host of the play (``ansible_play_hosts_all``), ``running`` the
    hosts still running now. A repository is not mirrored when its runner failed it, stopped before
    reporting, or was down at the start; those failures go to the runner that owns them when it is
    still running, else to ``reporter`` (the host writing the summary), so each is named once. A
    repository whose runner is outside this play is named but left to that runner.

    Returns ``lines`` (a header, one line per repository, a conclusion), ``complete`` (every
    repository mirrored by this play), ``not_mirrored`` (source repositories) and ``failures``
    (host -> the lines that host fails with).
    """
    runner_list = _host_list(runners, "runners", "mirror_summary")
    live_set = set(_host_list(live, "live", "mirror_summary"))
    play_set = set(_host_list(in_play, "in_play", "mirror_summary"))
    running_set = set(_host_list(running, "running", "mirror_summary"))
    if not isinstance(reports, Mapping):
        raise AnsibleFilterError(f"mirror_summary: reports must map host names to results, got {reports!r}")
    try:
        pairs = expand_spec(spec)
        owners = [owner(pair.src, runner_list) for pair in pairs]
    except InvalidInputError as exc:
        raise AnsibleFilterError(str(exc)) from None

    lines: list[str] = []
    not_mirrored: list[str] = []
    elsewhere: list[str] = []
    failures: dict[str, list[str]] = {}
    for pair, runner in zip(pairs, owners):
        if runner not in play_set:
            elsewhere.append(pair.src)
            lines.append(f"{runner}: {pair.src} -> {pair.dest}: left to {runner}, a runner outside this play")
            continue
        text, failed = _account(pair, runner, live_set, reports)
        lines.append(f"{runner}: {text}")
        if failed:
            not_mirrored.append(pair.src)
            failures.setdefault(runner if runner in running_set else reporter, []).append(f"{runner}: {text}")

    sharing = [host for host in runner_list if host in live_set]
    header = f"Mirror summary: {len(pairs)} repositories, {len(sharing)} runners ({', '.join(sharing) or 'none'})"
    down = sorted(play_set - live_set)
    if down:
        pinned = [host for host in down if host in runner_list]
        moved = [host for host in down if host not in runner_list]
        if moved:
            header += f"; down before the role, their share went to the live runners: {', '.join(moved)}"
        if pinned:
            header += f"; down before the role but pinned in mirror_runners: {', '.join(pinned)}"
    if not_mirrored:
        conclusion = (f"{len(not_mirrored)} of {len(pairs)} repositories not mirrored: {', '.join(not_mirrored)}. "
                      "Run the same play again: only what is missing is copied")
    elif elsewhere:
        done = len(pairs) - len(elsewhere)
        conclusion = (f"All {done} repositories of this play's runners {'checked' if check_mode else 'mirrored'}; "
                      f"{len(elsewhere)} left to runners outside this play")
    elif check_mode:
        conclusion = "Every repository checked (check mode: nothing written)"
    else:
        conclusion = "Every repository mirrored"
    return {"lines": [header, *lines, conclusion], "complete": not not_mirrored and not elsewhere,
            "not_mirrored": not_mirrored, "failures": failures}


def mirror_tag_patterns(entry: Any) -> list[str]:
    """The entry's selectors as ``registry_copy`` ``tags`` regexes (include / names / exclude only)."""
    if not isinstance(entry, dict):
        raise AnsibleFilterError(f"mirror_tag_patterns: an entry must be a mapping, got {type(entry).__name__}")
    try:
        return as_tag_patterns(entry, str(entry.get("src", "entry")))
    except InvalidInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """The collection's mirror filters."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function."""
        return {"mirror_shard": mirror_shard, "mirror_summary": mirror_summary,
                "mirror_tag_patterns": mirror_tag_patterns}
