# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A sync specification: which source repositories go to which destination repositories, and
which runner of a fleet mirrors each. Pure: no I/O.

An entry::

    - src: docker.io/library/nginx          # a repository (no tag), or a list of them
      dest: mirror.example:5000/hub         # a registry host, or host/path
      naming: prefix                        # prefix (default) | flat | exact
      rewrite: {pattern: 'library/(.*)', replacement: 'official/\\1'}   # instead of naming
      semver: '>=1.25'                      # ... any selector of _model/tag_selection.py

Destination naming (the source path is the repository path without the host):

- ``prefix``: ``dest`` path + ``/`` + source path (``hub/library/nginx``); a bare host keeps the path.
- ``flat``: ``dest`` path + ``/`` + the last component of the source path (``hub/nginx``).
- ``exact``: ``dest`` is the whole destination repository (one source only).
- ``rewrite``: the regex must match the whole source path; the replacement (``\\1`` groups)
  is the new path, put under the ``dest`` path.

Every mistake in a spec is one line of the single error raised (``mirror_spec[2]: ...``).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
    normalize_registry,
    validate_repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    SELECTOR_KEYS,
    TagSelection,
    parse_selection,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.transport_ref import (
    is_local,
)

NAMINGS = ("prefix", "flat", "exact")
ENTRY_KEYS = ("src", "dest", "naming", "rewrite", *SELECTOR_KEYS)
#: Options that hold one entry (a dict, not a list): their lines say ``select:``, not ``select[0]:``.
SINGLE_ENTRY_OPTIONS = ("select",)


@dataclass(frozen=True)
class SyncPair:
    """One concrete mirror: a source repository, its destination repository and the tag selectors."""

    src_registry: str
    src_repository: str
    dest_registry: str
    dest_repository: str
    selectors: TagSelection
    #: The selector block as the user wrote it (passed on to per-pair tasks).
    selector_block: Mapping[str, Any]
    #: Position of the entry in the spec (for messages).
    entry: int

    @property
    def src(self) -> str:
        """``host/repository`` of the source."""
        return f"{self.src_registry}/{self.src_repository}"

    @property
    def dest(self) -> str:
        """``host/repository`` of the destination."""
        return f"{self.dest_registry}/{self.dest_repository}"

    def to_entry(self) -> dict[str, Any]:
        """This pair as a one-source spec entry with ``naming: exact`` (what a runner's share holds)."""
        return {"src": self.src, "dest": self.dest, "naming": "exact", **dict(self.selector_block)}


def _split_dest(text: str) -> tuple[str, str]:
    """``host[:port][/path]`` -> (registry, path); raises InvalidInputError."""
    host, _sep, path = text.strip().partition("/")
    if not host or not ("." in host or ":" in host or host == "localhost"):
        raise InvalidInputError(
            f"dest {text!r} must start with a registry host (a name with a dot or a port, or localhost), "
            "e.g. mirror.example:5000 or mirror.example/hub")
    registry = normalize_registry(host)
    if not path:
        return registry, ""
    reference = Reference.parse(f"{host}/{path}")
    if reference.tag or reference.digest:
        raise InvalidInputError(f"dest {text!r} names a tag or digest: give a registry or repository; "
                                "tags are chosen by the selectors")
    return registry, reference.repository


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _sources(value: Any, problems: list[str]) -> list[Reference]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        problems.append(f"src must be a repository (host/path) or a list of them, got {value!r}")
        return []
    found = []
    for text in texts:
        try:
            reference = Reference.parse(text)
        except InvalidInputError as exc:
            problems.append(f"src: {exc}")
            continue
        if reference.tag or reference.digest:
            problems.append(f"src {text!r} names a tag or digest: give the repository and choose tags "
                            "with selectors (names: [...] for literal tags)")
            continue
        found.append(reference)
    return found


def _dest_path(naming: str, rewrite: re.Pattern[str] | None, replacement: str, base: str, source: Reference,
               problems: list[str]) -> str | None:
    if rewrite is not None:
        match = rewrite.fullmatch(source.repository)
        if match is None:
            problems.append(f"rewrite pattern {rewrite.pattern!r} does not match the whole source path "
                            f"{source.repository!r}: widen it or give this source its own entry")
            return None
        try:
            return _join(base, match.expand(replacement))
        except (re.error, IndexError) as exc:
            problems.append(f"rewrite replacement {replacement!r} is invalid ({exc}); use \\1 for group 1")
            return None
    if naming == "flat":
        return _join(base, source.repository.rsplit("/", 1)[-1])
    if naming == "exact":
        return base
    return _join(base, source.repository)


def _local_sides(entry: Mapping[str, Any], option: str) -> str | None:
    """One line when src or dest names a local layout or archive, which only ``tags`` mirrors."""
    sources = entry.get("src")
    texts = [text for text in (sources if isinstance(sources, list) else [sources]) if isinstance(text, str)]
    local = [f"src {text!r}" for text in texts if is_local(text)]
    dest = entry.get("dest")
    if isinstance(dest, str) and is_local(dest):
        local.append(f"dest {dest!r}")
    if not local:
        return None
    return (f"{' and '.join(local)} {'is a' if len(local) == 1 else 'are'} local layout or archive, but "
            f"{option} mirrors between registries only: to mirror into or out of a layout, use src, dest "
            "and tags (regular expressions) instead")


def _expand_entry(position: int, entry: Any, option: str = "mirror_spec") -> tuple[list[SyncPair], list[str]]:
    """The pairs of one entry and its problems (unprefixed)."""
    problems: list[str] = []
    if not isinstance(entry, Mapping):
        return [], [f"an entry must be a mapping with src and dest, got {type(entry).__name__}"]
    local = _local_sides(entry, option)
    if local is not None:
        return [], [local]  # the registry-name checks would only blame the layout's path
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        problems.append(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                        f"use {', '.join(ENTRY_KEYS)}")
    sources = _sources(entry.get("src"), problems) if "src" in entry else []
    if "src" not in entry:
        problems.append("src is missing: the source repository, e.g. docker.io/library/nginx")
    dest_registry = dest_base = None
    if not isinstance(entry.get("dest"), str) or not entry.get("dest"):
        problems.append("dest is missing: a registry (mirror.example:5000) or repository (mirror.example/hub)")
    else:
        try:
            dest_registry, dest_base = _split_dest(entry["dest"])
        except InvalidInputError as exc:
            problems.append(str(exc))
    naming = entry.get("naming") or "prefix"
    if naming not in NAMINGS:
        problems.append(f"naming must be one of {', '.join(NAMINGS)}, got {naming!r}")
        naming = "prefix"
    rewrite, replacement = None, ""
    if entry.get("rewrite") is not None:
        value = entry["rewrite"]
        if (not isinstance(value, Mapping) or not isinstance(value.get("pattern"), str)
                or not isinstance(value.get("replacement"), str) or set(value) - {"pattern", "replacement"}):
            problems.append("rewrite must be {pattern: REGEX, replacement: TEXT}, e.g. "
                            "{pattern: 'library/(.*)', replacement: 'hub/\\1'}")
        else:
            try:
                rewrite, replacement = re.compile(value["pattern"]), value["replacement"]
            except re.error as exc:
                problems.append(f"rewrite pattern {value['pattern']!r} is not a valid regular expression ({exc})")
        if entry.get("naming") not in (None, "prefix"):
            problems.append(f"rewrite and naming: {naming} exclude each other: keep one")
    if naming == "exact" and len(sources) > 1:
        problems.append("naming: exact takes one src (the destination is one repository); use prefix or flat")
        sources = []  # expanding them would only add "both go to" lines for the same mistake
    if naming == "exact" and dest_registry is not None and not dest_base:
        problems.append("naming: exact needs dest to be a repository (host/path), not just a registry")
    block = {key: entry[key] for key in SELECTOR_KEYS if key in entry}
    try:
        selectors = parse_selection(block)
    except InvalidInputError as exc:
        problems.extend(str(exc).splitlines())
        selectors = None
    pairs = []
    if dest_registry is not None and selectors is not None:
        for source in sources:
            path = _dest_path(naming, rewrite, replacement, dest_base or "", source, problems)
            if path is None:
                continue
            try:
                validate_repository(path)
            except InvalidInputError as exc:
                problems.append(f"destination for {source.registry}/{source.repository}: {exc}")
                continue
            pairs.append(SyncPair(source.registry, source.repository, dest_registry, path, selectors, block,
                                  position))
    return pairs, problems


def expand_spec(entries: Any, option: str = "mirror_spec") -> list[SyncPair]:
    """Validate a sync specification and expand it into (source, destination) pairs, in spec order.

    Raises one :class:`InvalidInputError` with a line per mistake (``mirror_spec[2]: ...``),
    including two sources aimed at one destination repository and a repository mirrored onto itself.
    An option of :data:`SINGLE_ENTRY_OPTIONS` (``select``) holds the one entry given, and its lines
    say ``select: ...``.
    """
    if not isinstance(entries, list) or not entries:
        raise InvalidInputError(f"{option} must be a non-empty list of {{src, dest, selectors...}} entries")

    def label(position: int) -> str:
        return option if option in SINGLE_ENTRY_OPTIONS else f"{option}[{position}]"

    problems: list[str] = []
    pairs: list[SyncPair] = []
    for position, entry in enumerate(entries):
        found, entry_problems = _expand_entry(position, entry, option)
        problems.extend(f"{label(position)}: {line}" for line in entry_problems)
        pairs.extend(found)
    owners: dict[str, SyncPair] = {}
    for pair in pairs:
        where = label(pair.entry)
        if pair.src == pair.dest:
            problems.append(f"{where}: {pair.src} would be mirrored onto itself: change dest or naming")
        first = owners.setdefault(pair.dest, pair)
        if first is not pair:
            if first.src == pair.src:
                problems.append(f"{where}: {pair.src} -> {pair.dest} is already in {label(first.entry)}: "
                                "list it once")
            else:
                problems.append(f"{where}: {pair.src} and {first.src} ({label(first.entry)}) both go to "
                                f"{pair.dest}: one destination repository takes one source")
    if problems:
        raise InvalidInputError("\n".join(problems))
    return pairs


def _score(host: str, key: str) -> bytes:
    return hashlib.sha256(f"{host}\n{key}".encode()).digest()


def owner(key: str, hosts: Sequence[str]) -> str:
    """The host that mirrors ``key`` (a source repository): rendezvous hashing over sha256.

    Each host scores the key and the highest score wins, so the answer depends only on the key
    and the set of hosts (not their order), and adding a host moves only the keys it now wins.
    """
    if not hosts:
        raise InvalidInputError("sharding needs at least one host")
    return max(sorted(set(hosts)), key=lambda host: _score(host, key))


def shard_pairs(pairs: Iterable[SyncPair], hosts: Sequence[str], me: str) -> list[SyncPair]:
    """The pairs ``me`` mirrors: those whose source repository ``me`` owns (all pairs of a source
    stay together, so one runner lists each source once)."""
    hosts = list(hosts)
    if me not in hosts:
        raise InvalidInputError(f"{me!r} is not one of the hosts sharing the spec ({', '.join(hosts) or 'none'})")
    return [pair for pair in pairs if owner(pair.src, hosts) == me]


def shard(entries: Any, hosts: Sequence[str], me: str, option: str = "mirror_spec") -> list[dict[str, Any]]:
    """``me``'s share of a spec, as one-source ``naming: exact`` entries (see :meth:`SyncPair.to_entry`).

    The shares of all ``hosts`` are disjoint and together hold every pair of the spec.
    """
    return [pair.to_entry() for pair in shard_pairs(expand_spec(entries, option), hosts, me)]
