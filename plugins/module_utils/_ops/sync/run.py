# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one mirror engine: many repositories, any image store, one bounded pool, one result shape.

:func:`run_mirror` takes :class:`MirrorPair` objects (a source store, a destination store, and how
to choose tags: regexes, :class:`TagPatterns`, or a selector block, :class:`SelectorChoice`) and
works in phases, all on ONE bounded pool (:class:`~.pool.SharedPool`, ``concurrency`` workers)
shared by every repository and tag, so the run takes as long as bandwidth and concurrency say, not
as long as the number of tags. A store is a registry repository or a local layout or archive view
(:class:`~.copying.store.ImageStore`). Its three spellings in ``registry_copy`` (``tags``,
``select``, ``mirror_spec``) differ only in how pairs and choices are built: :func:`run_sync`
opens registry pairs from a sync specification, ``copying.transfer`` builds pairs of registry
repositories and layouts for ``tags``. The phases:

1. list the tags of each source repository once (and of each destination repository when
   ``prune_missing`` needs them);
2. read image creation times (config ``created``) only for pairs whose selectors need ages;
3. select (pure, :func:`..._model.tag_selection.select_tags`);
4. copy every selected tag with the copy engine (:func:`~.copying.image.copy_image`), which
   stops after two HEADs when the destination tag already holds the source digest;
5. ``prune_missing``: remove destination tags whose source tag is gone, within ``max_deletions``
   (check mode lists them and removes nothing). A removed tag's digest is read only for a diff
   (``SyncOptions.diff``) or where the untag needs it; the first removal per registry, then per
   repository, runs alone, so that what it teaches the client (no DELETE by tag, the placeholder's
   blob in place) is learnt once.

What one phase read, a later one does not ask again: a tag's manifest fetched for its age says
what the copy copies, the destination listing says which tags are absent, and ``no_clobber``'s
two digests are the copy's.

Copy failures are reported per tag, never raised: the caller decides how to fail. With
``keep_going`` off (the ``tags`` spelling's default), the first failure stops the run from starting
more tags; tags already in flight finish, the rest are reported as not attempted.

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
from collections.abc import Callable, Hashable, Sequence
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
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
    parse_platforms,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    is_attached_tag,
    is_lease_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    Selection,
    TagSelection,
    select_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.timestamps import (
    format_timestamp,
    judge_timestamp,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_patterns import (
    unmatched_regexes,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    DEFAULT_CONCURRENCY,
    BlobsInFlight,
    CopyOptions,
    CopyResult,
    check_leases,
    copy_image,
    store_name,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    SharedPool,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    fetch_config,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.counts import (
    MirrorCounts,
    distinct_bytes,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    SyncPair,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Registry,
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.store import (
        ImageStore,
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
    """How to run a mirror. Defaults: copy only what is missing, never delete, no rate ceiling."""

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
    #: With a ``platforms`` subset, write reduced indexes (see :class:`~.copying.image.CopyOptions`).
    allow_index_rewrite: bool = False
    #: ``format: oci``: convert Docker-typed manifests on the way (see :mod:`~.copying.convert`).
    to_oci: bool = False
    #: Off: the first failed tag stops the run from starting more (those in flight finish).
    keep_going: bool = True
    #: How a failure is told in the result (default: the error's own message). A caller that knows
    #: its option names words the advice with them (the Ansible glue's ``describe``).
    describe: Callable[[RegistryError], str] | None = None
    #: The caller shows a diff: read the digest each removed tag held (its "before"). Off, a removal
    #: reads it only where the untag itself needs it (a registry without DELETE by tag).
    diff: bool = False

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
        parse_platforms(self.platforms)  # a bad platform fails here, before any request

    def blob_concurrency(self, tags: int) -> int:
        """Blob streams per image: the tags in flight (at most ``concurrency``) share the pooled
        connections, so a mirror of one large image streams as many blobs as a single copy."""
        workers = max(1, min(self.concurrency, tags))
        return max(1, min(DEFAULT_CONCURRENCY, _POOLED_CONNECTIONS // workers))

    def copy_options(self, tags: int) -> CopyOptions:
        """How each tag is copied (the prune lease is honoured once per repository, after its tags)."""
        return CopyOptions(platforms=self.platforms, allow_index_rewrite=self.allow_index_rewrite,
                           referrers=self.referrers, concurrency=self.blob_concurrency(tags),
                           check_mode=self.check_mode, verify=self.verify, to_oci=self.to_oci,
                           honour_leases=False, in_flight=BlobsInFlight())


class TagPatterns:
    """``registry_copy``'s ``tags``: full-match regexes, any of which selects a tag.

    A prune lease tag is never selected (coordination between writers, not an image); with
    ``referrers``, neither are the referrers-schema and cosign tags, which travel with their image.
    """

    needs_ages = False

    def __init__(self, patterns: Sequence[str], *, skip_referrer_tags: bool) -> None:
        if not patterns:
            raise InvalidInputError("mirroring needs at least one tags pattern (use '.*' for every tag)")
        self.patterns = tuple(patterns)
        self.skip_referrer_tags = skip_referrer_tags
        self.selection = TagSelection.from_patterns(self.patterns)  # an invalid regex fails here

    def without_ages(self) -> TagPatterns:
        """The same choice (it never reads ages)."""
        return self

    def describe(self) -> dict[str, Any]:
        """The patterns as plain data."""
        return {"tags": list(self.patterns)}

    def select(self, tags: Sequence[str], created: dict[str, datetime | None], now: datetime) -> Selection:
        """The tags to copy, sorted, each with why (pure; ``created`` and ``now`` are not needed)."""
        return select_tags(sorted(set(tags)), self.selection, skip_referrer_tags=self.skip_referrer_tags)

    def warnings(self, where: str, available: Sequence[str], selection: Selection) -> tuple[list[str], list[str]]:
        """(warnings, notes): a pattern that selects nothing, else a mirror that copies nothing."""
        warnings = unmatched_regexes(available, self.patterns, where)
        notes = []
        if not selection.selected:
            notes.append(f"no tag of {where} matches {', '.join(self.patterns)}")
            if not warnings:  # a pattern's own warning already says it (and names the pattern)
                warnings.append(f"the mirror selects no tag of {where} ({len(available)} tag(s)), so nothing was "
                                "copied")
        return warnings, notes


class SelectorChoice:
    """``select`` and ``mirror_spec``: a selector block (:class:`..._model.tag_selection.TagSelection`)."""

    def __init__(self, selectors: TagSelection, *, skip_referrer_tags: bool = True) -> None:
        self.selectors = selectors
        # As for ``tags``: referrers and cosign tags travel with their subjects when referrers are
        # copied; otherwise they are tags like any other, as skopeo sync copies them.
        self.skip_referrer_tags = skip_referrer_tags

    @property
    def needs_ages(self) -> bool:
        """True when deciding needs image creation times."""
        return self.selectors.needs_ages

    def without_ages(self) -> SelectorChoice:
        """Only the match and exclude stages: the tags that can need an age."""
        return SelectorChoice(replace(self.selectors, min_age=None, newest=None, newest_patch_per=None),
                              skip_referrer_tags=self.skip_referrer_tags)

    def describe(self) -> dict[str, Any]:
        """The block as plain data."""
        return self.selectors.describe()

    def select(self, tags: Sequence[str], created: dict[str, datetime | None], now: datetime) -> Selection:
        """What the block chooses (pure)."""
        return select_tags(tags, self.selectors, created=created, now=now, skip_referrer_tags=self.skip_referrer_tags)

    def warnings(self, where: str, available: Sequence[str], selection: Selection) -> tuple[list[str], list[str]]:
        """(warnings, notes): literal names the source lacks, a block that chose nothing."""
        warnings = []
        if selection.missing:
            warnings.append(f"{where}: names not in the source: {', '.join(selection.missing)}")
        if not selection.selected:
            warnings.append(f"{where}: the selectors chose no tag")
        return warnings, []


@dataclass(frozen=True)
class MirrorPair:
    """One source store mirrored into one destination store, each tag to the same tag.

    ``src`` / ``dest`` are how results name the two sides; ``label`` is put before each tag in the
    run-wide keys (``tag_results``, ``failed_tags``, the diff): empty for one repository, ``team/app:``
    for a repository of a bundle, ``host/repository:`` for a sync specification.
    """

    src: str
    dest: str
    src_store: Any
    dest_store: Any
    choice: TagPatterns | SelectorChoice
    label: str = ""


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
    pair: MirrorPair
    src: Any = None
    dest: Any = None
    src_tags: list[str] | None = None
    dest_tags: list[str] | None = None
    #: ``dest_tags`` as a set: a tag not in it is absent, no HEAD needed to learn so.
    listed: frozenset[str] | None = None
    created: dict[str, datetime | None] = field(default_factory=dict)
    selection: Selection | None = None
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Each copied tag's full result (what ``tag_results`` reports).
    copies: dict[str, CopyResult] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    #: The exception behind ``error`` (a caller that mirrors one repository raises it as it is).
    exception: RegistryError | None = None
    pruned: list[str] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    #: Tags written (with their bytes) and the ones a concurrent prune took and that were written again.
    written: list[Any] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    lease_notes: list[str] = field(default_factory=list)
    #: Tag -> the digest a removal found it at (the diff's "before"), where it was read.
    prune_digests: dict[str, str] = field(default_factory=dict)
    #: Tag -> the source manifest's descriptor where reading its age fetched it (the copy does not HEAD it again).
    sources: dict[str, Descriptor] = field(default_factory=dict)


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

    def tag_done(self, pair: MirrorPair, tag: str, record: dict[str, Any]) -> None:
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
    def __init__(self, pairs: Sequence[MirrorPair], options: SyncOptions, now: datetime,
                 pool: SharedPool) -> None:
        self.options, self.now, self.pool = options, now, pool
        self._lock = threading.Lock()
        self.stop_reason: str | None = None
        #: Why no further tag is started although the run goes on (``keep_going`` off, a tag failed).
        self.halt_reason: str | None = None
        self.states = [_PairState(pair, pair.src_store, pair.dest_store) for pair in pairs]
        self.progress: _Progress | None = None
        self.copy_options = options.copy_options(1)
        # The registry clients behind the stores (local stores have none): their rate limits.
        self.registries: dict[str, Any] = {}
        for state in self.states:
            for store in (state.src, state.dest):
                registry = getattr(store, "registry", None)
                if registry is not None and not getattr(store, "local", False):
                    self.registries.setdefault(registry.host, registry)

    def rate_limits(self) -> dict[str, Any]:
        limits = {}
        for host, registry in self.registries.items():
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
        for host, registry in list(self.registries.items()):
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
        self.pool.map(function, items)  # task functions record their own errors; a raise here is a bug


class _Registries:
    """``run_sync``'s clients: one per (host, side), each throttled once when a rate is asked for."""

    def __init__(self, open_registry: RegistryFactory, rate: RequestRate | None) -> None:
        self._open, self._rate = open_registry, rate
        self._registries: dict[tuple[str, str], Any] = {}

    def __call__(self, host: str, side: str) -> Any:
        key = (host, side)
        if key not in self._registries:
            registry = self._open(host, side)
            if self._rate is not None and not any(r is registry for r in self._registries.values()):
                throttle(registry, self._rate)  # a factory may hand out one client for both sides
            self._registries[key] = registry
        return self._registries[key]


def run_sync(pairs: Sequence[SyncPair], open_registry: RegistryFactory, options: SyncOptions, *,
             now: datetime | None = None) -> dict[str, Any]:
    """Mirror every pair of a sync specification (registries only); return :meth:`MirrorResult.to_dict`.

    Result keys: ``changed``, ``failed`` (True when a tag or repository failed, drift was refused
    under ``no_clobber``, deletions were refused by ``max_deletions``, or a rate limit stopped
    the run), ``repositories`` (one entry per pair with its summary ``line``), ``summary``
    (totals), ``prune`` (planned / removed / refused), ``stopped`` (the rate-limit reason or
    None), ``rate_limits`` (host -> last reported limit), and the run-wide keys of every mirror
    (see :class:`MirrorResult`).
    """
    options.check()
    rate = RequestRate(options.max_requests_per_second) if options.max_requests_per_second else None
    registry = _Registries(open_registry, rate)
    mirror_pairs = [MirrorPair(pair.src, pair.dest, registry(pair.src_registry, "src").repository(pair.src_repository),
                               registry(pair.dest_registry, "dest").repository(pair.dest_repository),
                               SelectorChoice(pair.selectors, skip_referrer_tags=options.referrers),
                               label=f"{pair.dest}:") for pair in pairs]
    return run_mirror(mirror_pairs, options, now=now).to_dict()


def run_mirror(pairs: Sequence[MirrorPair], options: SyncOptions, *, now: datetime | None = None) -> MirrorResult:
    """Mirror every pair on one bounded pool (see the module docstring for the phases)."""
    options.check()
    progress = _Progress(options.progress_file, 0, options.check_mode)  # a bad path fails here, before any request
    started = time.monotonic()
    prune: dict[str, Any] = {"planned": {}, "removed": {}, "refused": None, "already_gone": {}}
    with SharedPool(options.concurrency) as pool:
        run = _Run(pairs, options, now or datetime.now(UTC), pool)
        run.progress = progress
        try:
            _list_tags(run)
            _read_ages(run)
            for state in run.states:
                if state.src_tags is not None and state.error is None:
                    state.selection = state.pair.choice.select(state.src_tags, state.created, run.now)
            jobs = [(state, tag) for state in run.states if state.selection is not None
                    for tag in state.selection.selected]
            progress.total = len(jobs)
            run.copy_options = options.copy_options(len(jobs))
            run.each(lambda job: _copy_one(run, *job), jobs)
            _honour_leases(run)
            if options.prune_missing:
                prune = _prune(run)
        finally:
            progress.close()
    return _result(run, prune, time.monotonic() - started)


def mirror_tags(src: ImageStore, dest: ImageStore, patterns: Sequence[str], options: SyncOptions) -> MirrorResult:
    """Mirror the tags of ``src`` matching ``patterns`` (full-match regexes) to the same tags of ``dest``:
    the ``tags`` spelling over two stores, for callers that hold them already."""
    choice = TagPatterns(patterns, skip_referrer_tags=options.referrers)
    return run_mirror([MirrorPair(store_name(src), store_name(dest), src, dest, choice)], options)


def _list_tags(run: _Run) -> None:
    """Each source listed once (a source fanned out to several destinations too), then the
    destinations when ``prune_missing`` needs them."""
    listings: dict[str, tuple[list[str] | None, RegistryError | None]] = {}

    def source(state: _PairState) -> None:
        if not run.may_continue():
            listings[state.pair.src] = (None, None)
            return
        try:
            listings[state.pair.src] = (state.src.tags(), None)
        except RegistryError as exc:
            listings[state.pair.src] = (None, exc)

    firsts = {state.pair.src: state for state in reversed(run.states)}
    run.each(source, list(firsts.values()))
    for state in run.states:
        state.src_tags, state.exception = listings[state.pair.src]
        if state.exception is not None:
            state.error = error_record(state.exception, run.options)
        elif state.src_tags is None:
            state.error = {"type": "Stopped", "message": run.stop_reason, "status": None, "code": None}

    def destination(state: _PairState) -> None:
        try:
            state.dest_tags = state.dest.tags()
        except NotFoundError:
            state.dest_tags = []  # a destination that does not exist yet has nothing to remove
        except RegistryError as exc:
            state.exception, state.error = exc, error_record(exc, run.options)
            return
        state.listed = frozenset(state.dest_tags)

    if run.options.prune_missing:
        run.each(destination, [state for state in run.states if state.error is None])


def _read_ages(run: _Run) -> None:
    jobs = []
    for state in run.states:
        if state.src_tags is None or state.error is not None or not state.pair.choice.needs_ages:
            continue
        # Only tags that the match and exclude stages keep can need an age: read no other config.
        for tag in state.pair.choice.without_ages().select(state.src_tags, {}, run.now).selected:
            state.created[tag] = None
            jobs.append((state, tag))

    def one(job: tuple[_PairState, str]) -> None:
        state, tag = job
        if run.may_continue():
            state.created[tag] = _created(state.src, tag, run.now, state.sources)

    run.each(one, jobs)


def _created(repo: Repository, tag: str, now: datetime, sources: dict[str, Descriptor]) -> datetime | None:
    """The image's config ``created`` time; for an index, its first image's. None when unknown.

    The tag's manifest, fetched for it, also says what the tag points at: its descriptor goes to
    ``sources``, where the copy of a selected tag finds it instead of resolving the tag again.
    """
    try:
        manifest = repo.fetch_manifest(tag)
        if not manifest.is_schema1:  # schema 1 is signed per fetch: its digest is the registry's to say
            sources[tag] = Descriptor(manifest.media_type, manifest.digest, manifest.size)
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
    elif run.halt_reason is not None:
        record = {"status": NOT_ATTEMPTED, "reason": run.halt_reason}
    else:
        record = _copy_checked(run, state, tag)
        if record["status"] == FAILED and not run.options.keep_going:
            with run._lock:
                run.halt_reason = run.halt_reason or (f"not tried: {state.pair.label}{tag} failed and keep_going "
                                                      "is off")
    record.setdefault("seconds", round(time.monotonic() - begun, 3))
    with run._lock:
        state.outcomes[tag] = record
        state.finished = time.monotonic()
    if run.progress is not None:
        run.progress.tag_done(state.pair, tag, record)


def _copy_checked(run: _Run, state: _PairState, tag: str) -> dict[str, Any]:
    options = run.options
    known = state.sources.get(tag)
    # The destination's listing (read for prune_missing) already says which tags it lacks.
    absent = state.listed is not None and tag not in state.listed
    read: dict[str, Any] = {"source": known} if known is not None else {}
    if absent:
        read["dest_before"] = {tag: None}
    try:
        if options.no_clobber:
            source, present = known or state.src.resolve(tag), None if absent else state.dest.resolve(tag)
            if source is not None and present is not None and present.digest != source.digest:
                return {"status": DRIFT, "source_digest": source.digest, "dest_digest": present.digest,
                        "reason": f"{state.pair.dest}:{tag} points at {present.digest}, the source at "
                                  f"{source.digest}; no_clobber leaves it"}
            # The copy compares the same two digests: it is handed them, not left to read them again.
            read = {"source": source, "dest_before": {tag: present.digest if present is not None else None}}
        outcome = copy_image(state.src, tag, state.dest, [tag], run.copy_options, **read)
    except RegistryError as exc:
        return {"status": FAILED, "error": error_record(exc, options)}
    with run._lock:
        state.written.extend(outcome.written)
        state.copies[tag] = outcome
    record: dict[str, Any] = {"status": COPIED if outcome.changed else PRESENT, "digest": outcome.digest,
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
    by_dest = {state.pair.dest: state for state in run.states}
    jobs = [(dest, tag) for dest, tags in planned.items() for tag in tags]
    if run.options.check_mode:
        if run.options.diff:  # nothing else reads the digest a removal would take a tag from
            run.each(lambda job: _read_prune_digest(run, by_dest[job[0]], job[1]), jobs)
        return {"planned": planned, "removed": {}, "refused": refused, "already_gone": {}}

    def one(job: tuple[str, str]) -> None:
        dest, tag = job
        state = by_dest[dest]
        try:
            if run.options.diff:
                # The digest is what the diff shows before; a registry without DELETE by tag reads it
                # anyway to untag, and is handed it (the same requests, in another order).
                current = state.dest.resolve(tag)
                if current is None:
                    raise NotFoundError(f"tag {tag} is gone", status=404)
                with run._lock:
                    state.prune_digests[tag] = current.digest
                state.dest.delete_tag(tag, current=current.digest)
            else:
                # Without a diff nobody reads the digest: a DELETE by tag needs none, and the
                # placeholder untag (no DELETE by tag) reads it itself.
                state.dest.delete_tag(tag)
        except NotFoundError:
            # The one rule for "already gone" (Repository.delete_manifest, missing_ok): the tag this
            # removal meant to remove is not there any more, so it counts as removed, and says so.
            with run._lock:
                already_gone.setdefault(dest, []).append(tag)
        except RegistryError as exc:
            with run._lock:
                state.outcomes.setdefault(f"prune:{tag}", {"status": FAILED, "error": error_record(exc, run.options)})
            return
        with run._lock:
            removed.setdefault(dest, []).append(tag)
            state.pruned.append(tag)

    for phase in _removal_phases(jobs, by_dest):
        run.each(one, phase)
    return {"planned": planned, "removed": {d: sorted(t) for d, t in removed.items()}, "refused": refused,
            "already_gone": {d: sorted(t) for d, t in already_gone.items()}}


def _removal_phases(jobs: Sequence[tuple[str, str]], by_dest: dict[str, _PairState]) -> list[list[tuple[str, str]]]:
    """The removals in three waves, each run on the pool: one per registry, then one per further
    repository, then the rest.

    A registry client learns from its first tag removal whether DELETE by tag works (else each
    removal pushes a placeholder), and a repository handle from its first placeholder that the
    placeholder's empty blob is there. Removals sent all at once would each find that out anew:
    the refused DELETE and the empty blob's HEAD and upload once per tag instead of once.
    """
    first_of_registry: list[tuple[str, str]] = []
    first_of_repository: list[tuple[str, str]] = []
    rest: list[tuple[str, str]] = []
    registries: set[int] = set()
    repositories: set[str] = set()
    for dest, tag in jobs:
        if dest in repositories:
            rest.append((dest, tag))
            continue
        repositories.add(dest)
        registry = id(getattr(by_dest[dest].dest, "registry", None) or by_dest[dest].dest)
        if registry in registries:
            first_of_repository.append((dest, tag))
        else:
            registries.add(registry)
            first_of_registry.append((dest, tag))
    return [phase for phase in (first_of_registry, first_of_repository, rest) if phase]


def _read_prune_digest(run: _Run, state: _PairState, tag: str) -> None:
    """Check mode: the digest a removal would take the tag from (for the diff); unknown if it cannot be read."""
    try:
        current = state.dest.resolve(tag)
    except RegistryError:
        return
    if current is not None:
        with run._lock:
            state.prune_digests[tag] = current.digest


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _over_limit(run: _Run, prune: dict[str, Any]) -> bool:
    """Whether ``max_deletions`` refuses every removal of the run."""
    limit = run.options.max_deletions
    return limit is not None and sum(len(tags) for tags in prune["planned"].values()) > limit


def _repository_summary(run: _Run, state: _PairState, prune: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, list[str]] = {name: [] for name in (COPIED, PRESENT, FAILED, DRIFT, NOT_ATTEMPTED)}
    for tag, record in state.outcomes.items():
        counts[record["status"]].append(tag)
    # Each blob once, however many of the repository's tags share it (see .counts).
    byte_count = distinct_bytes(state.copies.values(), _written(run, state))
    seconds = round((state.finished - state.started), 3) if state.started and state.finished else 0.0
    planned = prune["planned"].get(state.pair.dest, [])
    pruned = sorted(state.pruned)
    if run.options.check_mode and not _over_limit(run, prune):
        pruned = list(planned)  # as copied counts in check mode: what the real run would remove
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
        "selectors": state.pair.choice.describe(),
        "selection": state.selection.to_dict() if state.selection is not None else None,
        "tags": dict(sorted(state.outcomes.items())),
        **{name: sorted(tags) for name, tags in counts.items()},
        "prune_planned": planned, "pruned": pruned,
        "bytes": byte_count, "seconds": seconds, "error": state.error,
        "restored_after_prune": sorted(state.restored),
    }


def _counts() -> dict[str, int]:
    return {"manifests": 0, "blobs": 0, "bytes": 0}


@dataclass
class MirrorResult:
    """What a mirror did, in one shape whichever spelling asked for it.

    Per repository: :attr:`repositories` (summary lines, selections, per-tag outcomes). Run-wide,
    keyed by each pair's label and the tag: :attr:`tags` (each copied tag's :class:`CopyResult`),
    :attr:`failed` (each failed tag's error), :attr:`not_attempted`, and what was copied, mounted
    and already present, each digest once per destination (:mod:`.counts`).
    """

    changed: bool = False
    failed_run: bool = False
    repositories: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    prune: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None
    rate_limits: dict[str, Any] = field(default_factory=dict)
    progress_file: str | None = None
    tags: dict[str, CopyResult] = field(default_factory=dict)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_attempted: list[str] = field(default_factory=list)
    copied: dict[str, int] = field(default_factory=_counts)
    already_present: dict[str, int] = field(default_factory=_counts)
    mounted: list[str] = field(default_factory=list)
    #: Tag -> digest before and after (the diff): copied and present tags, and removed ones.
    dest_before: dict[str, str | None] = field(default_factory=dict)
    dest_after: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration: float = 0.0
    restored_after_prune: list[str] = field(default_factory=list)
    #: Repository-level errors (a source that cannot be listed), as raised.
    errors: list[RegistryError] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: every key a mirror returns, whichever spelling ran it."""
        return {
            "changed": self.changed, "failed": self.failed_run, "repositories": self.repositories,
            "summary": self.summary, "prune": self.prune, "stopped": self.stopped, "rate_limits": self.rate_limits,
            "warnings": list(self.warnings), "progress_file": self.progress_file,
            "tag_results": {name: result.to_dict() for name, result in self.tags.items()},
            "failed_tags": dict(self.failed), "not_attempted": list(self.not_attempted),
            "copied": dict(self.copied), "already_present": dict(self.already_present),
            "mounted": list(self.mounted), "dest_before": dict(self.dest_before), "dest_after": dict(self.dest_after),
            "notes": list(self.notes), "duration": round(self.duration, 3),
            "restored_after_prune": list(self.restored_after_prune),
        }

    def partial(self) -> dict[str, Any]:
        """The result keys a failure carries (``RegistryError.partial``): those of :meth:`to_dict` but
        ``failed``, ``warnings`` (a module warns with them, it does not return them) and the diff's
        ``dest_before`` / ``dest_after``, as a failed mirror returns them."""
        data = self.to_dict()
        for key in ("failed", "warnings", "dest_before", "dest_after"):
            del data[key]
        return data


def _result(run: _Run, prune: dict[str, Any], seconds: float) -> MirrorResult:
    repositories = [_repository_summary(run, state, prune) for state in run.states]
    outcomes = (COPIED, PRESENT, FAILED, DRIFT, NOT_ATTEMPTED)
    summary: dict[str, Any] = {name: sum(len(r[name]) for r in repositories) for name in outcomes}
    summary["pruned"] = sum(len(r["pruned"]) for r in repositories)
    summary["repositories"] = len(repositories)
    # A repository that failed as a whole (its tags could not be listed) has no failed tag to count.
    summary["failed_repositories"] = sum(1 for r in repositories if r["error"])
    summary["bytes"] = 0  # the distinct blobs of every destination, counted below
    summary["seconds"] = round(seconds, 3)
    changed = bool(summary[COPIED] or summary["pruned"] or (run.options.check_mode and any(
        r["prune_planned"] for r in repositories) and not prune["refused"]))
    failed = bool(summary[FAILED] or summary[DRIFT] or prune["refused"] or run.stop_reason
                  or any(r["error"] for r in repositories))
    result = MirrorResult(changed=changed, failed_run=failed, repositories=repositories, summary=summary,
                          prune=prune, stopped=run.stop_reason, rate_limits=run.rate_limits(),
                          progress_file=os.fspath(run.options.progress_file) if run.options.progress_file
                          and not run.options.check_mode else None, duration=seconds)
    counts = MirrorCounts()
    for state, repository in zip(run.states, repositories):
        label = state.pair.label
        if state.selection is not None and state.src_tags is not None:
            warnings, notes = state.pair.choice.warnings(state.pair.src, state.src_tags, state.selection)
            result.warnings.extend(warnings)
            result.notes.extend(notes)
        if state.exception is not None:
            result.errors.append(state.exception)
        for tag in state.selection.selected if state.selection is not None else ():
            outcome, record = state.copies.get(tag), state.outcomes.get(tag, {})
            if outcome is not None:
                _add_copy(result, label + tag, tag, outcome)
                counts.add(_destination(state.dest), outcome)
            elif record.get("status") == FAILED:
                result.failed[label + tag] = record["error"]
            elif record.get("status") == NOT_ATTEMPTED:
                result.not_attempted.append(label + tag)
        counts.add_written(_destination(state.dest), _written(run, state), _manifests_written(run, state))
        for tag, record in sorted(state.outcomes.items()):
            if tag.startswith("prune:") and record["status"] == FAILED:
                result.failed[label + tag] = record["error"]
        for tag in repository["pruned"]:  # in check mode: would be removed
            result.dest_before[label + tag] = state.prune_digests.get(tag, "present")
            result.dest_after[label + tag] = None
        result.restored_after_prune.extend(label + tag for tag in sorted(state.restored))
        result.warnings.extend(f"{state.pair.dest}: {text}" for text in state.lease_notes)
    result.copied, result.already_present = counts.copied(), counts.already_present()
    summary["bytes"] = result.copied["bytes"]
    return result


def _written(run: _Run, state: _PairState) -> dict[str, tuple[str, int]]:
    """The blobs the run's copies wrote to ``state``'s destination, those of tags that then failed too."""
    in_flight = run.copy_options.in_flight
    return in_flight.written(state.dest) if in_flight is not None else {}


def _manifests_written(run: _Run, state: _PairState) -> set[str]:
    """The manifests the run's copies pushed to ``state``'s destination, a failed tag's index children too."""
    in_flight = run.copy_options.in_flight
    return in_flight.manifests_written(state.dest) if in_flight is not None else set()


def _destination(store: Any) -> Hashable:
    """Where a destination's blobs live: a registry repository, or a whole layout (its repositories share them)."""
    if getattr(store, "local", False):
        return id(getattr(store, "store", None) or store)
    return store.registry.host, store.name


def _add_copy(result: MirrorResult, name: str, tag: str, outcome: CopyResult) -> None:
    """One tag's copy into the run-wide results (its counts go to :class:`~.counts.MirrorCounts`)."""
    result.tags[name] = outcome
    result.mounted.extend(d for d in outcome.mounted if d not in result.mounted)
    result.dest_before[name] = outcome.dest_before[tag]
    result.dest_after[name] = outcome.digest


def error_record(exc: RegistryError, options: SyncOptions) -> dict[str, Any]:
    """A failure as result data, its message told as ``options.describe`` tells it."""
    record = exc.to_dict()
    if options.describe is not None:
        record["message"] = options.describe(exc)
    return record


def failure_message(result: dict[str, Any], *, per_tag: bool = False) -> str:
    """The one line a failed run is reported with: the failing repositories' summary lines (the
    first few), then the causes of their failed and drifted tags (each once, see
    :func:`~.failures.summarize_failures`), then a rate-limit stop or a refused prune.

    ``per_tag`` (the ``tags`` spelling) counts tags instead of listing repository lines:
    ``1 of 4 tags failed to mirror: 1.0: <cause>``, then the tags not attempted (``1 not attempted: 2.0``).
    """
    if per_tag:
        return _per_tag_message(result)
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


def _tags(count: int) -> str:
    return f"{count} tag" if count == 1 else f"{count} tags"


def _per_tag_message(result: dict[str, Any]) -> str:
    failed, not_attempted = result["failed_tags"], result["not_attempted"]
    # Of the selected tags: copied or present (tag_results), failed, and not attempted.
    selected = len(failed) + len(result["tag_results"]) + len(not_attempted)
    parts = []
    if failed:
        causes = summarize_failures((name, error["message"], name.rpartition(":")[2])
                                    for name, error in failed.items())
        parts.append(f"{len(failed)} of {_tags(selected)} failed to mirror: {causes}")
    parts.extend(f"{r['src']}: {r['error']['message']}" for r in result["repositories"] if r["error"])
    if not_attempted:
        more = len(not_attempted) - SHOWN_CAUSES
        parts.append(f"{len(not_attempted)} not attempted: {', '.join(not_attempted[:SHOWN_CAUSES])}"
                     + (f" and {more} more" if more > 0 else ""))
    return "; ".join(item for item in (*parts, result["stopped"], result["prune"]["refused"]) if item)
