# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet's account of a sync specification: the runner that owns each repository and what became
of it, from the runners' ``registry_copy`` results. Pure: no I/O.

A repository is not mirrored when its runner reported it failed, has no line for it (its copy failed
as a whole, or it became unreachable), never reported (it stopped during its share), or was down
when the mirroring started while pinned in the set. A runner outside the play is left its share.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    SyncPair,
    expand_spec,
    owner,
)

#: The tag lists of a repository's entry in a sync result (``run.py``) that make it not mirrored.
FAILING_OUTCOMES = ("failed", "drift", "not_attempted")
#: The most of a runner's failure message that each line of its share repeats.
CAUSE_LIMIT = 160


@dataclass(frozen=True)
class Fleet:
    """Who shares a specification, and who was and is alive."""

    #: The hosts the specification was sharded over.
    runners: Sequence[str]
    #: The hosts alive when the mirroring started.
    live: Collection[str]
    #: Every host of the play (a pinned runner outside it belongs to another play).
    in_play: Collection[str]
    #: The hosts still running now.
    running: Collection[str]
    #: The host writing the account: it carries the failures of runners that cannot run any more.
    reporter: str


def repository_failed(repository: Mapping[str, Any]) -> bool:
    """True when a sync result's entry for one repository says some of it was not mirrored."""
    return bool(repository.get("error")) or any(bool(repository.get(key)) for key in FAILING_OUTCOMES)


def first_sentence(text: str, limit: int = CAUSE_LIMIT) -> str:
    """The first sentence of a message, at most ``limit`` characters."""
    first = text.strip().split("\n", 1)[0]
    end = first.find(". ")
    if end >= 0:
        first = first[:end + 1]
    return first if len(first) <= limit else first[:limit - 1] + "…"


def _outcome(pair: SyncPair, runner: str, fleet: Fleet, reports: Mapping[str, Any]) -> tuple[str, bool]:
    """One repository's line (after ``runner: ``) and whether it was left not mirrored."""
    where = f"{pair.src} -> {pair.dest}"
    if runner not in fleet.live:
        return f"{where}: not mirrored: {runner} was down when the role started (pinned in mirror_runners)", True
    report = reports.get(runner)
    if not isinstance(report, Mapping):
        return f"{where}: not mirrored: {runner} stopped during its share (failed or unreachable)", True
    for repository in report.get("repositories") or ():
        if isinstance(repository, Mapping) and repository.get("src") == pair.src \
                and repository.get("dest") == pair.dest:
            return str(repository.get("line") or where), repository_failed(repository)
    cause = first_sentence(str(report.get("msg") or "")) or "no result for it"
    if report.get("unreachable"):
        return f"{where}: not mirrored: {runner} became unreachable during its share: {cause}", True
    return f"{where}: not mirrored: {runner}'s copy failed before this repository: {cause}", True


def _header(count: int, fleet: Fleet) -> str:
    sharing = [host for host in fleet.runners if host in fleet.live]
    header = f"Mirror summary: {count} repositories, {len(sharing)} runners ({', '.join(sharing) or 'none'})"
    down = sorted(set(fleet.in_play) - set(fleet.live))
    moved = [host for host in down if host not in fleet.runners]
    pinned = [host for host in down if host in fleet.runners]
    if moved:
        header += f"; down before the role, their share went to the live runners: {', '.join(moved)}"
    if pinned:
        header += f"; down before the role but pinned in mirror_runners: {', '.join(pinned)}"
    return header


def account(entries: Any, fleet: Fleet, reports: Mapping[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """Every repository of a specification, the runner that owns it among ``fleet.runners``, and its outcome.

    ``reports`` maps a runner to its ``registry_copy`` result (absent or None when it has none). The
    failures go to the runner that owns them while it is still running, else to ``fleet.reporter``, so
    each is named once by a host that can fail. Raises InvalidInputError for a bad specification.

    Returns ``lines`` (a header, one ``runner: src -> dest: outcome`` line per repository in
    specification order, a conclusion that says "Every repository mirrored" only when it is true),
    ``complete``, ``not_mirrored`` (source repositories) and ``failures`` (host -> its lines).
    """
    pairs = expand_spec(entries)
    lines: list[str] = []
    not_mirrored: list[str] = []
    elsewhere: list[str] = []
    failures: dict[str, list[str]] = {}
    for pair in pairs:
        runner = owner(pair.src, list(fleet.runners))
        if runner not in fleet.in_play:
            elsewhere.append(pair.src)
            lines.append(f"{runner}: {pair.src} -> {pair.dest}: left to {runner}, a runner outside this play")
            continue
        text, failed = _outcome(pair, runner, fleet, reports)
        lines.append(f"{runner}: {text}")
        if failed:
            not_mirrored.append(pair.src)
            carrier = runner if runner in fleet.running else fleet.reporter
            failures.setdefault(carrier, []).append(f"{runner}: {text}")

    verb = "checked" if check_mode else "mirrored"
    if not_mirrored:
        conclusion = (f"{len(not_mirrored)} of {len(pairs)} repositories not mirrored: {', '.join(not_mirrored)}. "
                      "Run the same play again: only what is missing is copied")
    elif elsewhere:
        conclusion = (f"All {len(pairs) - len(elsewhere)} repositories of this play's runners {verb}; "
                      f"{len(elsewhere)} left to runners outside this play")
    elif check_mode:
        conclusion = "Every repository checked (check mode: nothing written)"
    else:
        conclusion = "Every repository mirrored"
    return {"lines": [_header(len(pairs), fleet), *lines, conclusion],
            "complete": not not_mirrored and not elsewhere, "not_mirrored": not_mirrored, "failures": failures}
