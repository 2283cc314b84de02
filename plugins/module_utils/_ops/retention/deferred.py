# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The second undo window of a prune: untag now, delete after a window, on a later run.

``quarantine: {untag_for: 7d, state: ops/prune-state}``. A run that condemns a deletion group does
not delete it: it records the group's digests in the *state* first, then removes their tags (the
untag mechanism of ``untag_kept_images``: a tag DELETE, or the documented placeholder). Children,
referrers and cosign artifacts stay, so re-tagging the digest (``registry_tag``) restores it all.
A later run reads the state and, for each entry whose window has passed, deletes the digest as a
prune deletes a group (with what it owns and the same checks) unless it was tagged again or is
reached by a kept tag: then the entry is dropped and reported ``rescued`` (that tag now owns it).
An entry held for any other reason (in use, a keep ``untagged`` rule) stays in the state,
reported ``pending`` with ``held_by``, and is judged again on the next run: it has no tag, so no
later prune but this state could ever find it again.

Where the state lives: in the registry, beside the pruned repositories, never inside them: a
repository the user names on the same registry (the credentials never travel to another host)
holds one small OCI artifact manifest per pruned repository, tagged :func:`state_tag` (readable,
with a hash of the path so two paths never share a tag). Its state is a JSON document in the
annotation :data:`STATE_ANNOTATION` (artifactType :data:`STATE_ARTIFACT_TYPE`): one GET reads it.

Crash order: a run deletes what is due first, then writes the state once (without what it deleted
or rescued, with what it condemns now), then untags. A crash between leaves at worst an entry for a
digest already gone (dropped next run, ``already_gone``) or for one still tagged (dropped next run
as rescued): never an untagged image nobody remembers. Writing is a PUT under the tag, then a
DELETE of the previous revision by digest (an empty state is that DELETE alone): a crash between
leaves one old revision untagged in the state repository, never a wrong state.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    EMPTY_DESCRIPTOR,
    EMPTY_JSON,
    unique_empty_artifact,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
    validate_repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    is_attached_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.timestamps import (
    format_timestamp,
    parse_duration,
    parse_rfc3339,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ACTION_DELETE,
    ACTION_KEEP,
    PlanEntry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.quarantine import (
    Quarantine,
    group_roots,
)

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Registry,
        Repository,
    )

#: The artifactType of a state manifest, and the annotation holding its JSON document.
STATE_ARTIFACT_TYPE = "application/vnd.ocireg.prune-deferred.v1"
STATE_ANNOTATION = "io.ocireg.registry.prune-deferred.state"
STATE_VERSION = 1
#: Statuses of an entry in the result's ``deferred`` list.
UNTAGGED, PENDING, DELETED, RESCUED = "untagged", "pending", "deleted", "rescued"
#: The rule name a due entry is condemned under when its state names none.
WINDOW_RULE = "quarantine.untag_for"
#: Longest readable part of a state tag (a tag has at most 128 characters).
_READABLE = 100


class DeferredStateError(RegistryError):
    """The state of the deferred deletes could not be read, or is not a document this collection wrote."""


@dataclass(frozen=True)
class Pending:
    """One digest untagged by a prune and waiting for its window (an entry of the state)."""

    digest: str
    tags: tuple[str, ...]
    untagged_at: datetime
    delete_after: datetime
    rules: tuple[str, ...] = ()
    media_type: str = ""

    def due(self, now: datetime) -> bool:
        """True once the window has passed."""
        return now >= self.delete_after

    def to_dict(self) -> dict[str, Any]:
        """The state document's (and the result's) plain data."""
        return {"digest": self.digest, "tags": list(self.tags), "untagged_at": format_timestamp(self.untagged_at),
                "delete_after": format_timestamp(self.delete_after), "rules": list(self.rules),
                "media_type": self.media_type}


def state_tag(repository: str) -> str:
    """The state manifest's tag for a pruned repository path: readable, and no two paths share it.

    ``team/app`` -> ``team_app-<12 hex of sha256("team/app")>``: the hash keeps ``team/app`` and
    ``team_app`` apart; the document names its repository too, and reading checks it.
    """
    readable = repository.replace("/", "_")[:_READABLE]
    return f"{readable}-{hashlib.sha256(repository.encode('utf-8')).hexdigest()[:12]}"


def encode_state(repository: str, entries: Iterable[Pending]) -> bytes:
    """The state manifest for ``repository`` (its path) holding ``entries`` (pure; sorted by digest)."""
    document = {"version": STATE_VERSION, "repository": repository,
                "pending": [e.to_dict() for e in sorted(entries, key=lambda e: e.digest)]}
    return unique_empty_artifact(STATE_ARTIFACT_TYPE,
                                 {STATE_ANNOTATION: json.dumps(document, separators=(",", ":"), sort_keys=True)})


def decode_state(repository: str, raw: bytes, where: str) -> list[Pending]:
    """The entries of a state manifest (pure). ``where`` names it in the one line a bad document gets."""
    def bad(problem: str) -> DeferredStateError:
        return DeferredStateError(f"the deferred-delete state {where} is corrupted ({problem}): it is not what "
                                  "registry_prune wrote; delete that tag to start the window over (the untagged "
                                  "images it listed then stay until removed by hand)")
    try:
        manifest = json.loads(raw)
        text = manifest["annotations"][STATE_ANNOTATION] if manifest.get("artifactType") == STATE_ARTIFACT_TYPE \
            else None
    except (ValueError, TypeError, KeyError, AttributeError):
        raise bad("no state annotation") from None
    if text is None:
        raise bad(f"artifactType is not {STATE_ARTIFACT_TYPE}")
    try:
        document = json.loads(text)
        version, named, listed = document["version"], document["repository"], document["pending"]
    except (ValueError, TypeError, KeyError):
        raise bad("the state annotation is not a JSON document with version, repository and pending") from None
    if version != STATE_VERSION:
        raise bad(f"version {version!r}; this collection reads version {STATE_VERSION}")
    if named != repository:
        raise bad(f"it describes repository {named!r}, not {repository!r}")
    entries = []
    try:
        for item in listed:
            entries.append(Pending(str(item["digest"]), tuple(str(t) for t in item["tags"]),
                                   _time(item["untagged_at"]), _time(item["delete_after"]),
                                   tuple(str(r) for r in item.get("rules", ())), str(item.get("media_type", ""))))
    except (ValueError, TypeError, KeyError) as err:
        raise bad(f"an entry is not digest, tags, untagged_at, delete_after: {err}") from None
    return entries


def _time(text: Any) -> datetime:
    return parse_rfc3339(text)  # ValueError for anything else, worded by decode_state


def parse_state_repository(text: Any, host: str) -> str:
    """The state repository's path on ``host``; another host is refused (the credentials stay with theirs)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("quarantine.state is empty: name a repository on the same registry, such as "
                                "ops/prune-state, to hold the deferred deletes")
    first = text.split("/", 1)[0]
    if "/" in text and ("." in first or ":" in first or first == "localhost"):
        try:
            ref = Reference.parse(text)
        except InvalidInputError as err:
            raise InvalidInputError(f"quarantine.state {text!r} is not a repository: {err.message}") from None
        if ref.tag is not None or ref.digest is not None:
            raise InvalidInputError(f"quarantine.state {text!r} carries a tag or digest: give a repository; "
                                    "each pruned repository's state gets its own tag in it")
        if ref.registry != host:
            raise InvalidInputError(f"quarantine.state {text!r} is on {ref.registry}, not on {host} that this run "
                                    "prunes: the state lives on the same registry (its credentials are not sent "
                                    "to another host); give a repository path such as ops/prune-state")
        return ref.repository
    try:
        return validate_repository(text)
    except InvalidReferenceError as err:
        raise InvalidInputError(f"quarantine.state {text!r}: {err.message}") from None


def undo_window(options: Mapping[str, Any] | None, open_repository: Callable[[Reference], Any], *,
                concurrency: int = 4) -> tuple[Quarantine | None, DeferredDelete | None]:
    """The ``quarantine`` option: a copy target (``dest``) or a deferred delete (``untag_for`` + ``state``)."""
    if options is None:
        return None, None
    dest, untag_for, state = options.get("dest"), options.get("untag_for"), options.get("state")
    if dest is not None and (untag_for is not None or state is not None):
        raise InvalidInputError("quarantine takes dest (copy each image away, then delete it) or untag_for with "
                                "state (untag now, delete on a run after the window), not both")
    if dest is not None:
        return Quarantine(dest, open_repository, concurrency=concurrency), None
    if untag_for is None or state is None:
        raise InvalidInputError("quarantine needs dest (oci:PATH, oci-archive:PATH or a holding repository), or "
                                "untag_for (such as 7d) with state (a repository on the same registry, such as "
                                "ops/prune-state)")
    return None, DeferredDelete(untag_for, state)


@dataclass
class RepositoryDeferral:
    """One pruned repository's deferred deletes: its state as read, and what this run makes of it."""

    name: str
    path: str
    entries: list[Pending]
    now: datetime
    window: timedelta
    owner: DeferredDelete
    #: Digests whose window has passed -> the rules that condemned them.
    due: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Digests in use (``in_use``): held (kept pending) whether due or not.
    running: set[str] = field(default_factory=set)
    report: list[dict[str, Any]] = field(default_factory=list)
    #: True when the state changed (written, or in check mode: would be).
    changed: bool = False
    #: Warning lines of the state's writes (an old revision that could not be deleted).
    warnings: list[str] = field(default_factory=list)

    def observe(self, tags: Mapping[str, str], running: Iterable[str]) -> None:
        """What the snapshot says: a digest tagged again (rescued) or in use (held) is not deleted this run."""
        self.running = set(running)
        tagged = set(tags.values())
        self.due = {d: rules for d, rules in self.due.items() if d not in tagged and d not in self.running}

    def is_due(self, group: Sequence[PlanEntry]) -> bool:
        """True for a deletion group whose root's window has passed (deleted now, not deferred).

        A due digest that a group condemned now owns (a child of an index untagged today) does not
        make that group due: the group gets its own window, and the digest goes with it.
        """
        return any(entry.digest in self.due for entry in group_roots(group))

    def recorded(self, groups: Sequence[Sequence[PlanEntry]]) -> list[Pending]:
        """The entries of groups deferred now: each root, and each member that loses a tag of its own."""
        out = []
        for group in groups:
            roots = {entry.digest for entry in group_roots(group)}
            for entry in group:
                tags = normal_tags(entry)
                if entry.digest in roots or tags:
                    rules = tuple(m.rule for m in entry.matched_rules if m.action == ACTION_DELETE)
                    out.append(Pending(entry.digest, tags, self.now, self.now + self.window, rules, entry.media_type))
        return out

    def settle(self, entries: Sequence[PlanEntry], tags_now: Mapping[str, str], deleted: Mapping[str, bool],
               new: Sequence[Pending], *, check_mode: bool) -> None:
        """Decide each state entry (deleted / rescued / pending), write the state when it changed, report.

        ``entries`` are the repository's plan entries, ``tags_now`` its tags, ``deleted`` the digests
        deleted this run (True when already gone), ``new`` what is deferred now.
        """
        planned = {e.digest: e for e in entries}
        tagged = set(tags_now.values())
        keep: list[Pending] = []
        for item in self.entries:
            entry = planned.get(item.digest)
            if item.digest in deleted:
                self._report(item, DELETED, already_gone=deleted[item.digest])
            elif item.digest in tagged:
                self._report(item, RESCUED, why="tagged again")
            elif entry is not None and entry.action == ACTION_KEEP and _reached_by_tag(entry):
                self._report(item, RESCUED, why=f"reached by {', '.join(entry.reachable_from)}")
            elif item.digest in self.running:
                # Held, not rescued: it has no tag, so only this state can still delete it once it stops running.
                keep.append(item)
                self._report(item, PENDING, held="in use")
            elif item.digest in self.due and entry is None:
                self._report(item, DELETED, already_gone=True)  # gone before this run read it
            elif item.digest in self.due and entry is not None and entry.action == ACTION_KEEP:
                keep.append(item)
                self._report(item, PENDING, held=_kept_because(entry))
            else:
                keep.append(item)
                self._report(item, PENDING)
        for item in new:
            self._report(item, UNTAGGED)
        final = sorted(keep + list(new), key=lambda e: e.digest)
        if final != sorted(self.entries, key=lambda e: e.digest):
            self.changed = True
            if not check_mode:
                warning = self.owner.write(self.path, final)
                if warning is not None:
                    self.warnings.append(warning)

    def _report(self, item: Pending, status: str, *, already_gone: bool = False, why: str | None = None,
                held: str | None = None) -> None:
        self.report.append({"repository": self.name, **item.to_dict(), "status": status,
                            "already_gone": already_gone, "rescued_by": why, "held_by": held})


def normal_tags(entry: PlanEntry) -> tuple[str, ...]:
    """An entry's own tags, without cosign and referrers-fallback tags (those follow their subject)."""
    return tuple(tag for tag in entry.tags if not is_attached_tag(tag))


def _reached_by_tag(entry: PlanEntry) -> bool:
    """True when a kept tag reaches the entry: that image owns it now, and deletes it with itself."""
    return any(":" not in name for name in entry.reachable_from)  # a digest has a ':', a tag never


def _kept_because(entry: PlanEntry) -> str:
    if entry.in_use:
        return "in use"
    if entry.reachable_from:
        return f"reached by {', '.join(entry.reachable_from)}"
    return "kept by the policy"


class DeferredDelete:
    """The ``quarantine.untag_for`` mode: its window, its state repository, and the state's reads and writes.

    Cost per pruned repository: one GET of its state manifest per run (a 404 when it has none), and
    when the state changed one PUT and one DELETE of the previous revision (none when there was no
    state; only the DELETE when no entry is left), plus, once per run, a HEAD of the empty blob the
    manifest refers to unless a state was read, and its upload the very first time. Check mode reads
    the state and writes nothing.
    """

    def __init__(self, untag_for: Any, state: Any) -> None:
        try:
            self.window = parse_duration(untag_for)
        except ValueError as err:
            raise InvalidInputError(f"quarantine.untag_for: {err}") from None
        if self.window <= timedelta(0):
            raise InvalidInputError(f"quarantine.untag_for {untag_for!r} is no window: give a duration such as 7d")
        self.state_text = state
        self.path = ""
        self.host = ""
        self.repo: Repository | None = None
        self._has_empty_blob = False
        #: Pruned repository path -> the digest of its state manifest as read or last written.
        self._revisions: dict[str, str] = {}

    def bind(self, registry: Registry, names: Sequence[str], *, check_mode: bool) -> None:
        """Name the state repository on ``registry``; refuse one this run prunes. No request is sent."""
        self.host = registry.host
        self.path = parse_state_repository(self.state_text, registry.host)
        if self.path in names:
            raise InvalidInputError(f"quarantine.state {self.path} is a repository this run prunes: the state lives "
                                    "beside the pruned repositories, never in one; exclude it (a catalog glob "
                                    f"such as '*' selects it too: exclude_repositories: ['{self.path}']), or name "
                                    "another repository in quarantine.state")
        self.repo = registry.repository(self.path, for_write=not check_mode)

    @property
    def where(self) -> str:
        """The state repository, as messages name it."""
        return f"{self.host}/{self.path}"

    def read(self, repository: str) -> list[Pending]:
        """The state of one pruned repository path (one GET; none yet: empty). Raises one line on failure."""
        if self.repo is None:
            raise InvalidInputError("the deferred delete was not bound to a registry")
        tag = state_tag(repository)
        where = f"{self.where}:{tag}"
        try:
            manifest = self.repo.fetch_manifest(tag)
        except NotFoundError:
            return []
        except RegistryError as err:
            raise DeferredStateError(f"the deferred-delete state {where} could not be read ({err.message}); nothing "
                                     "was pruned: check that the credentials may read and write "
                                     f"{self.where}") from None
        self._has_empty_blob = True  # a state manifest refers to it, so the repository has it
        entries = decode_state(repository, manifest.raw, where)
        self._revisions[repository] = manifest.digest
        return entries

    def write(self, repository: str, entries: Sequence[Pending]) -> str | None:
        """Replace one pruned repository's state with ``entries``; a warning line when an old revision stays.

        The new state manifest is put under the tag (the empty blob first, when missing), then the
        previous one is deleted by digest: without it every change would leave an untagged revision
        in the state repository. An empty state is no manifest at all: the previous one is deleted,
        its tag with it (one request), and reading finds no state, as before the first run.
        """
        if self.repo is None:
            raise InvalidInputError("the deferred delete was not bound to a registry")
        previous = self._revisions.pop(repository, None)
        if not entries:
            if previous is not None:
                self.repo.delete_manifest(previous, missing_ok=True, relink_retry=True)
            return None
        if not self._has_empty_blob:
            if self.repo.blob_exists(EMPTY_DESCRIPTOR.digest) is None:
                self.repo.push_blob(EMPTY_DESCRIPTOR.digest, len(EMPTY_JSON), EMPTY_JSON)
            self._has_empty_blob = True
        digest = self.repo.push_manifest(state_tag(repository), encode_state(repository, entries),
                                         mt.OCI_MANIFEST, update_referrers=False)
        self._revisions[repository] = digest
        if previous is None or previous == digest:
            return None
        try:
            # Only the state tag ever pointed at it, and the PUT above moved that tag: nothing else goes with it.
            self.repo.delete_manifest(previous, missing_ok=True, relink_retry=True)
        except RegistryError as err:
            return (f"the previous deferred-delete state of {repository} ({self.where}@{previous}) could not be "
                    f"deleted ({err.message}); the new state is written, and the old one stays untagged in "
                    f"{self.where} until deleted by hand")
        return None

    def open(self, name: str, path: str, entries: list[Pending], now: datetime) -> RepositoryDeferral:
        """One repository's deferral: the entries due at ``now`` (read with the snapshot, see :meth:`RepositoryDeferral.observe`)."""
        deferral = RepositoryDeferral(name, path, entries, now, self.window, self)
        deferral.due = {e.digest: e.rules or (WINDOW_RULE,) for e in entries if e.due(now)}
        return deferral
