# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mirror many repositories in one run: the I/O side of a sync specification.

:func:`run_sync` takes the expanded pairs (:func:`~.spec.expand_spec`) and a factory of
:class:`~.registry.Registry` clients, and works in phases, all on ONE bounded thread pool
(``concurrency`` workers) shared by every repository and tag, so the run takes as long as
bandwidth and concurrency say, not as long as the number of tags:

1. list the tags of each source repository once (and of each destination repository when
   ``prune_missing`` needs them);
2. read image creation times (config ``created``) only for pairs whose selectors need ages;
3. select (pure, :func:`~.selectors.select_tags`);
4. copy every selected tag with the copy engine (:func:`~.copying.image.copy_image`), which
   stops after two HEADs when the destination tag already holds the source digest;
5. ``prune_missing``: remove destination tags whose source tag is gone, within ``max_deletions``
   (check mode lists them and removes nothing).

Copy failures are reported per tag, never raised: the caller decides how to fail.

Rate limits: before each request-making task the registries' last reported pull limit
(``RateLimit-Remaining``, Docker Hub) is compared with ``min_remaining``; at or below it the run
stops cleanly: tasks not yet started are reported as not attempted, none is cut in the middle.
``max_requests_per_second`` is a token bucket shared by the pool, applied to every registry
request the run sends (token requests to an auth realm are not counted: they go to another host).
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    ManifestError,
    NotFoundError,
    RegistryError,
    TooLargeError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.failures import (
    SHOWN_CAUSES,
    summarize_failures,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    is_attached_tag,
    is_lease_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    Selection,
    select_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.timestamps import (
    format_timestamp,
    judge_timestamp,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    DEFAULT_CONCURRENCY,
    CopyOptions,
    check_leases,
    copy_image,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    fetch_config,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    SyncPair,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Registry,
        Repository,
    )

#: Tags copied at once across the whole run (the pool's bound) when the user does not say.
DEFAULT_SYNC_CONCURRENCY = 8
#: The most a user may ask for: each worker holds connections on both sides.
MAX_SYNC_CONCURRENCY = 64
#: Connections the transport pools per registry: blob streams per image are chosen so that
#: workers x blob streams stays within it (more would only queue for a connection).
_POOLED_CONNECTIONS = 16

#: Outcome names, in the order summaries list them.
COPIED, PRESENT, FAILED, DRIFT, NOT_ATTEMPTED = "copied", "already_present", "failed", "drift", "not_attempted"

#: Opens a registry client for ``(host, side)``; side is ``"src"`` or ``"dest"`` (credentials differ).
RegistryFactory = Callable[[str, str], "Registry"]


@dataclass(frozen=True)
class SyncOptions:
    """How to run a sync. Defaults: copy only what is missing, never delete, no rate ceiling."""

    concurrency: int = DEFAULT_SYNC_CONCURRENCY
    platforms: tuple[str, ...] | None = None
    referrers: bool = False
    check_mode: bool = False
    prune_missing: bool = False
    max_deletions: int | None = None
    no_clobber: bool = False
    min_remaining: int | None = None
    max_requests_per_second: float | None = None
    progress_file: str | None = None
    #: The verification gate of ``verify`` (see :class:`~.copying.image.CopyOptions`), per tag.
    verify: Callable[[Any, str], dict] | None = None
    #: The opt-in prune lease: after its writes, each destination repository's tags are listed once.
    prune_lease: bool = False

    def check(self) -> None:
        """Raise InvalidInputError with one line per bad value."""
        problems = []
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or not (
                1 <= self.concurrency <= MAX_SYNC_CONCURRENCY):
            problems.append(f"concurrency must be a whole number from 1 to {MAX_SYNC_CONCURRENCY}, "
                            f"got {self.concurrency!r}")
        if self.max_deletions is not None and (isinstance(self.max_deletions, bool) or self.max_deletions < 0):
            problems.append(f"max_deletions must be 0 or more, got {self.max_deletions!r}")
        if self.max_deletions is not None and not self.prune_missing:
            problems.append("max_deletions only applies with prune_missing: true")
        if self.min_remaining is not None and (isinstance(self.min_remaining, bool) or self.min_remaining < 0):
            problems.append(f"min_remaining must be 0 or more, got {self.min_remaining!r}")
        if self.max_requests_per_second is not None and not self.max_requests_per_second > 0:
            problems.append(f"max_requests_per_second must be more than 0, got {self.max_requests_per_second!r}")
        if problems:
            raise InvalidInputError("\n".join(problems))

    @property
    def blob_concurrency(self) -> int:
        """Blob streams per image: the pool's workers share the pooled connections."""
        return max(1, min(DEFAULT_CONCURRENCY, _POOLED_CONNECTIONS // self.concurrency))


class RequestRate:
    """A token bucket: at most ``rate`` requests per second on average, bursts up to ``burst``.

    Shared by every worker of the pool; ``acquire`` blocks the calling worker until a token is free.
    ``clock`` and ``sleep`` exist so tests do not wait.
    """

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()
        self.acquired = 0

    def acquire(self) -> None:
        """Take one token, waiting for it if the bucket is empty."""
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.acquired += 1
                    return
                wait_for = (1 - self._tokens) / self.rate
            self._sleep(wait_for)


def throttle(registry: Registry, rate: RequestRate) -> None:
    """Make every request attempt of ``registry`` take a token of ``rate`` first.

    Uses the transport's ``before_request`` hook, on this one client object (other clients are
    unaffected).
    """
    registry.transport.before_request = rate.acquire


@dataclass
class _PairState:
    pair: SyncPair
    src: Any = None
    dest: Any = None
    src_tags: list[str] | None = None
    dest_tags: list[str] | None = None
    created: dict[str, datetime | None] = field(default_factory=dict)
    selection: Selection | None = None
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    pruned: list[str] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    #: Tags written (with their bytes) and the ones a concurrent prune took and that were written again.
    written: list[Any] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    lease_notes: list[str] = field(default_factory=list)


def _unwritable(path: str, reason: str) -> InvalidInputError:
    return InvalidInputError(f"progress_file: cannot append to {path!r} ({reason}); give a path in a directory "
                             "that exists and is writable")


def check_progress_path(path: str) -> None:
    """Refuse a progress file that could not be appended to, without creating or touching it."""
    target = path if os.path.exists(path) else (os.path.dirname(os.path.abspath(path)) or ".")
    if not os.path.exists(target):
        raise _unwritable(path, "No such file or directory")
    if os.path.isdir(path) or not os.access(target, os.W_OK):
        raise _unwritable(path, "Is a directory" if os.path.isdir(path) else "Permission denied")


class _Progress:
    """JSON lines appended to ``path`` as tags finish, flushed each time (``tail -f`` friendly).

    In check mode nothing is written, not even an empty file: a line says what happened, and
    nothing did. The path is still checked, so a run that would fail says so.
    """

    def __init__(self, path: str | None, total: int, check_mode: bool = False) -> None:
        self._lock = threading.Lock()
        self._file = None
        if path and check_mode:
            check_progress_path(path)
        elif path:
            try:
                self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
            except OSError as exc:
                raise _unwritable(path, str(exc.strerror)) from None
        self.total, self.done = total, 0

    def tag_done(self, pair: SyncPair, tag: str, record: dict[str, Any]) -> None:
        with self._lock:
            self.done += 1
            if self._file is None:
                return
            line = {"time": format_timestamp(datetime.now(UTC)), "src": pair.src, "dest": pair.dest,
                    "tag": tag, "status": record["status"], "bytes": record.get("bytes", 0),
                    "seconds": record.get("seconds", 0.0), "done": self.done, "total": self.total}
            if record.get("error"):
                line["error"] = record["error"]["message"]
            self._file.write(json.dumps(line) + "\n")
            self._file.flush()

    def event(self, **data: Any) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(json.dumps({"time": format_timestamp(datetime.now(UTC)), **data}) + "\n")
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _Run:
    def __init__(self, pairs: Sequence[SyncPair], open_registry: RegistryFactory, options: SyncOptions,
                 now: datetime) -> None:
        self.options, self.now = options, now
        self._open_registry = open_registry
        self._registries: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.rate = RequestRate(options.max_requests_per_second) if options.max_requests_per_second else None
        self.stop_reason: str | None = None
        self.states = [_PairState(pair) for pair in pairs]
        self.pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="ocireg-sync")
        self.progress: _Progress | None = None

    # -- clients ---------------------------------------------------------------------------------
    def registry(self, host: str, side: str) -> Any:
        with self._lock:
            key = (host, side)
            if key not in self._registries:
                registry = self._open_registry(host, side)
                if self.rate is not None and not any(r is registry for r in self._registries.values()):
                    throttle(registry, self.rate)  # a factory may hand out one client for both sides
                self._registries[key] = registry
            return self._registries[key]

    def rate_limits(self) -> dict[str, Any]:
        limits = {}
        for (host, _side), registry in self._registries.items():
            rate = registry.rate_limit
            if rate is not None:
                limits[host] = {"limit": rate.limit, "remaining": rate.remaining, "window": rate.window,
                                "source": rate.source}
        return limits

    def may_continue(self) -> bool:
        """False once a registry reported no more than ``min_remaining`` requests left (then stays False)."""
        if self.stop_reason is not None:
            return False
        if self.options.min_remaining is None:
            return True
        for (host, _side), registry in list(self._registries.items()):
            rate = registry.rate_limit
            if rate is not None and rate.remaining is not None and rate.remaining <= self.options.min_remaining:
                with self._lock:
                    if self.stop_reason is None:
                        self.stop_reason = (f"stopped: {host} reports {rate.describe()}, at or below min_remaining "
                                            f"{self.options.min_remaining}; run again once the window has passed")
                return False
        return True

    def each(self, function: Callable[[Any], None], items: Sequence[Any]) -> None:
        """Run ``function`` over ``items`` on the shared pool and wait for all of them."""
        futures: list[Future] = [self.pool.submit(function, item) for item in items]
        wait(futures)
        for future in futures:
            future.result()  # task functions record their own errors; anything here is a bug


def run_sync(pairs: Sequence[SyncPair], open_registry: RegistryFactory, options: SyncOptions, *,
             now: datetime | None = None) -> dict[str, Any]:
    """Mirror every pair; return plain data (see the module docstring for the phases).

    Result keys: ``changed``, ``failed`` (True when a tag or repository failed, drift was refused
    under ``no_clobber``, deletions were refused by ``max_deletions``, or a rate limit stopped
    the run), ``repositories`` (one entry per pair with its summary ``line``), ``summary``
    (totals), ``prune`` (planned / removed / refused), ``stopped`` (the rate-limit reason or
    None), ``rate_limits`` (host -> last reported limit).
    """
    options.check()
    progress = _Progress(options.progress_file, 0, options.check_mode)  # a bad path fails here, before any request
    run = _Run(pairs, open_registry, options, now or datetime.now(UTC))
    run.progress = progress
    started = time.monotonic()
    prune: dict[str, Any] = {"planned": {}, "removed": {}, "refused": None, "already_gone": {}}
    try:
        for state in run.states:
            state.src = run.registry(state.pair.src_registry, "src").repository(state.pair.src_repository)
            state.dest = run.registry(state.pair.dest_registry, "dest").repository(state.pair.dest_repository)
        _list_tags(run)
        _read_ages(run)
        for state in run.states:
            if state.src_tags is not None and state.error is None:
                state.selection = select_tags(state.src_tags, state.pair.selectors,
                                              created=state.created, now=run.now)
        jobs = [(state, tag) for state in run.states if state.selection is not None
                for tag in state.selection.selected]
        progress.total = len(jobs)
        run.each(lambda job: _copy_one(run, *job), jobs)
        _honour_leases(run)
        if options.prune_missing:
            prune = _prune(run)
    finally:
        run.pool.shutdown(wait=True)
        progress.close()
    return _result(run, prune, time.monotonic() - started)


def _list_tags(run: _Run) -> None:
    """Each source repository listed once (a source fanned out to several destinations too), then
    the destination repositories when ``prune_missing`` needs them."""
    listings: dict[str, tuple[list[str] | None, dict[str, Any] | None]] = {}

    def source(state: _PairState) -> None:
        if not run.may_continue():
            listings[state.pair.src] = (None, {"type": "Stopped", "message": run.stop_reason, "status": None,
                                               "code": None})
            return
        try:
            listings[state.pair.src] = (state.src.tags(), None)
        except RegistryError as exc:
            listings[state.pair.src] = (None, exc.to_dict())

    firsts = {state.pair.src: state for state in reversed(run.states)}
    run.each(source, list(firsts.values()))
    for state in run.states:
        state.src_tags, state.error = listings[state.pair.src]

    def destination(state: _PairState) -> None:
        try:
            state.dest_tags = state.dest.tags()
        except NotFoundError:
            state.dest_tags = []  # a destination that does not exist yet has nothing to remove
        except RegistryError as exc:
            state.error = exc.to_dict()

    if run.options.prune_missing:
        run.each(destination, [state for state in run.states if state.error is None])


def _read_ages(run: _Run) -> None:
    jobs = []
    for state in run.states:
        if state.src_tags is None or state.error is not None or not state.pair.selectors.needs_ages:
            continue
        # Only tags that the match and exclude stages keep can need an age: read no other config.
        ageless = replace(state.pair.selectors, min_age=None, newest=None, newest_patch_per=None)
        for tag in select_tags(state.src_tags, ageless).selected:
            state.created[tag] = None
            jobs.append((state, tag))

    def one(job: tuple[_PairState, str]) -> None:
        state, tag = job
        if run.may_continue():
            state.created[tag] = _created(state.src, tag, run.now)

    run.each(one, jobs)


def _created(repo: Repository, tag: str, now: datetime) -> datetime | None:
    """The image's config ``created`` time; for an index, its first image's. None when unknown."""
    try:
        manifest = repo.fetch_manifest(tag)
        if manifest.is_index:
            children = manifest.children()
            if not children:
                return None
            manifest = repo.fetch_manifest(children[0].digest)
        config = fetch_config(repo, manifest)
    except (NotFoundError, TooLargeError, ManifestError):
        return None
    when, _problem = judge_timestamp((config or {}).get("created"), now)
    return when


def _copy_one(run: _Run, state: _PairState, tag: str) -> None:
    begun = time.monotonic()
    with run._lock:
        state.started = begun if state.started is None else min(state.started, begun)
    record: dict[str, Any]
    if not run.may_continue():
        record = {"status": NOT_ATTEMPTED, "reason": run.stop_reason}
    else:
        record = _copy_checked(run, state, tag)
    record.setdefault("seconds", round(time.monotonic() - begun, 3))
    with run._lock:
        state.outcomes[tag] = record
        state.finished = time.monotonic()
    if run.progress is not None:
        run.progress.tag_done(state.pair, tag, record)


def _copy_checked(run: _Run, state: _PairState, tag: str) -> dict[str, Any]:
    options = run.options
    try:
        if options.no_clobber:
            source, present = state.src.resolve(tag), state.dest.resolve(tag)
            if source is not None and present is not None and present.digest != source.digest:
                return {"status": DRIFT, "source_digest": source.digest, "dest_digest": present.digest,
                        "reason": f"{state.pair.dest}:{tag} points at {present.digest}, the source at "
                                  f"{source.digest}; no_clobber leaves it"}
        outcome = copy_image(state.src, tag, state.dest, [tag], CopyOptions(
            platforms=options.platforms, referrers=options.referrers, concurrency=options.blob_concurrency,
            check_mode=options.check_mode, verify=options.verify, honour_leases=False))
    except RegistryError as exc:
        return {"status": FAILED, "error": exc.to_dict()}
    with run._lock:
        state.written.extend(outcome.written)
    record = {"status": COPIED if outcome.changed else PRESENT, "digest": outcome.digest,
              "before": outcome.dest_before.get(tag), "bytes": outcome.copied["bytes"],
              "seconds": round(outcome.duration, 3)}
    if outcome.verified is not None:
        record["verified"] = outcome.verified
    return record


def _honour_leases(run: _Run) -> None:
    """Once per destination repository, after all its tags: the prune-lease check (_ops/coordination)."""
    for state in run.states:
        if state.written and run.options.prune_lease and not run.options.check_mode:
            try:
                check_leases(state.dest, state.written, state.restored, state.lease_notes)
            except RegistryError as exc:
                state.lease_notes.append(f"the prune lease check failed: {exc}")


def _prune(run: _Run) -> dict[str, Any]:
    """Plan removals (destination tags whose source tag is gone), apply them within max_deletions."""
    planned: dict[str, list[str]] = {}
    refused = None
    for state in run.states:
        if state.error is not None or state.src_tags is None or state.dest_tags is None:
            continue
        source = set(state.src_tags)
        gone = sorted(t for t in state.dest_tags if t not in source and not is_attached_tag(t)
                      and not is_lease_tag(t))
        if gone and not source:
            # An empty listing is more often a broken source than a deliberately emptied one.
            refused = (f"{state.pair.src} lists no tags: refusing to remove all {len(gone)} tags of "
                       f"{state.pair.dest}; delete them with registry_prune if that is really wanted")
            continue
        if gone:
            planned[state.pair.dest] = gone
    total = sum(len(tags) for tags in planned.values())
    limit = run.options.max_deletions
    if limit is not None and total > limit:
        refused = (f"prune_missing would remove {total} tags, more than max_deletions {limit}: nothing was "
                   "removed; raise max_deletions or check the source")
        return {"planned": planned, "removed": {}, "refused": refused, "already_gone": {}}
    removed: dict[str, list[str]] = {}
    already_gone: dict[str, list[str]] = {}
    if run.options.check_mode:
        return {"planned": planned, "removed": {}, "refused": refused, "already_gone": {}}
    by_dest = {state.pair.dest: state for state in run.states}

    def one(job: tuple[str, str]) -> None:
        dest, tag = job
        state = by_dest[dest]
        try:
            state.dest.delete_tag(tag)
        except NotFoundError:
            # The one rule for "already gone" (Repository.delete_manifest, missing_ok): the tag this
            # removal meant to remove is not there any more, so it counts as removed, and says so.
            with run._lock:
                already_gone.setdefault(dest, []).append(tag)
        except RegistryError as exc:
            with run._lock:
                state.outcomes.setdefault(f"prune:{tag}", {"status": FAILED, "error": exc.to_dict()})
            return
        with run._lock:
            removed.setdefault(dest, []).append(tag)
            state.pruned.append(tag)

    run.each(one, [(dest, tag) for dest, tags in planned.items() for tag in tags])
    return {"planned": planned, "removed": {d: sorted(t) for d, t in removed.items()}, "refused": refused,
            "already_gone": {d: sorted(t) for d, t in already_gone.items()}}


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _repository_summary(run: _Run, state: _PairState, prune: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, list[str]] = {name: [] for name in (COPIED, PRESENT, FAILED, DRIFT, NOT_ATTEMPTED)}
    for tag, record in state.outcomes.items():
        counts[record["status"]].append(tag)
    byte_count = sum(r.get("bytes", 0) for r in state.outcomes.values())
    seconds = round((state.finished - state.started), 3) if state.started and state.finished else 0.0
    planned = prune["planned"].get(state.pair.dest, [])
    pruned = sorted(state.pruned)
    verb = "would copy" if run.options.check_mode else "copied"
    line = (f"{state.pair.src} -> {state.pair.dest}: {len(counts[COPIED])} {verb}, "
            f"{len(counts[PRESENT])} already present, {len(counts[FAILED])} failed")
    if counts[DRIFT]:
        line += f", {len(counts[DRIFT])} drifted (no_clobber)"
    if counts[NOT_ATTEMPTED]:
        line += f", {len(counts[NOT_ATTEMPTED])} not attempted"
    if run.options.prune_missing:
        line += f", {len(pruned) if not run.options.check_mode else len(planned)} " \
                f"{'would be removed' if run.options.check_mode or prune['refused'] else 'removed'}"
    line += f", {_size(byte_count)}, {seconds:.1f} s"
    if state.error is not None:
        line = f"{state.pair.src} -> {state.pair.dest}: failed: {state.error['message']}"
    return {
        "src": state.pair.src, "dest": state.pair.dest, "line": line,
        "selectors": state.pair.selectors.describe(),
        "selection": state.selection.to_dict() if state.selection is not None else None,
        "tags": dict(sorted(state.outcomes.items())),
        **{name: sorted(tags) for name, tags in counts.items()},
        "prune_planned": planned, "pruned": pruned,
        "bytes": byte_count, "seconds": seconds, "error": state.error,
        "restored_after_prune": sorted(state.restored),
    }


def _result(run: _Run, prune: dict[str, Any], seconds: float) -> dict[str, Any]:
    repositories = [_repository_summary(run, state, prune) for state in run.states]
    outcomes = (COPIED, PRESENT, FAILED, DRIFT, NOT_ATTEMPTED)
    summary: dict[str, Any] = {name: sum(len(r[name]) for r in repositories) for name in outcomes}
    summary["pruned"] = sum(len(r["pruned"]) for r in repositories)
    summary["repositories"] = len(repositories)
    summary["bytes"] = sum(r["bytes"] for r in repositories)
    summary["seconds"] = round(seconds, 3)
    changed = bool(summary[COPIED] or summary["pruned"] or (run.options.check_mode and any(
        r["prune_planned"] for r in repositories) and not prune["refused"]))
    failed = bool(summary[FAILED] or summary[DRIFT] or prune["refused"] or run.stop_reason
                  or any(r["error"] for r in repositories))
    warnings = []
    for repository in repositories:
        selection = repository["selection"]
        if selection and selection["missing"]:
            warnings.append(f"{repository['src']}: names not in the source: {', '.join(selection['missing'])}")
        if selection and not selection["selected"]:
            warnings.append(f"{repository['src']}: the selectors chose no tag")
    for state in run.states:
        warnings.extend(f"{state.pair.dest}: {text}" for text in state.lease_notes)
    return {"changed": changed, "failed": failed, "repositories": repositories, "summary": summary,
            "prune": prune, "stopped": run.stop_reason, "rate_limits": run.rate_limits(), "warnings": warnings,
            "progress_file": os.fspath(run.options.progress_file) if run.options.progress_file
            and not run.options.check_mode else None}


def failure_message(result: dict[str, Any]) -> str:
    """The one line a failed run is reported with: the failing repositories' summary lines (the
    first few), then the causes of their failed and drifted tags (each once, see
    :func:`~.failures.summarize_failures`), then a rate-limit stop or a refused prune."""
    failing = [r for r in result["repositories"] if r["error"] or r[FAILED] or r[DRIFT] or r[NOT_ATTEMPTED]]
    parts = [r["line"] for r in failing[:SHOWN_CAUSES]]
    if len(failing) > SHOWN_CAUSES:
        parts.append(f"and {len(failing) - SHOWN_CAUSES} more repositories")
    text = "; ".join(parts)
    several = sum(1 for r in failing if r[FAILED] or r[DRIFT]) > 1
    causes = [(f"{r['dest']}:{tag}" if several else tag,
               _cause(record, r["dest"] if several else None), tag.removeprefix("prune:"))
              for r in failing for tag, record in r["tags"].items() if record["status"] in (FAILED, DRIFT)]
    if causes:
        text += f" - {summarize_failures(causes)}"
    return "; ".join(item for item in (text, result["stopped"], result["prune"]["refused"]) if item)


def _cause(record: dict[str, Any], dest: str | None) -> str:
    """A tag's error or drift reason; across repositories with the repository masked, so that one
    cause that hit many repositories (a destination wanting credentials) is told once."""
    text = (record.get("error") or {}).get("message") or str(record.get("reason"))
    if dest is None:
        return text
    for name in (dest, dest.partition("/")[2]):
        if name:
            text = re.sub(rf"(?<![\w.-]){re.escape(name)}(?=[:@ ;,)]|$)", "<repository>", text)
    return text
