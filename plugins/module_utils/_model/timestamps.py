# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How old is an image: timestamp sources, RFC 3339 parsing and durations.

Pure functions, no I/O. The retention planner asks one question of this
module: *when was this digest made, and how do we know?* The answer is a
:class:`Timestamp`: either a time plus the source it came from, or *unknown*
plus the reason. Unknown is a first-class answer because a wrong age deletes
images: reproducible builds stamp ``created`` with the Unix epoch, some tools
write nothing, clocks drift into the future.

Rules (see :func:`resolve_timestamps`):

- sources are tried in the order the user gave; the first one that yields a
  *plausible* time wins, so a bad annotation falls back to the config
  ``created`` when that is listed after it;
- plausible means RFC 3339, not before 2000-01-01T00:00:00Z and not later
  than ``now`` plus :data:`FUTURE_SKEW` (clock skew between builder and us);
- an index has no config and no labels: it uses its annotation sources, and
  without a plausible one it takes the newest known time of its children
  (children of unknown age are ignored; when all are unknown so is the index).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, Protocol, Sequence

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)

OCI_CREATED = "org.opencontainers.image.created"
# Nothing pushed to an OCI registry predates 2000; anything earlier is a
# placeholder (epoch 0 from reproducible builds, Go's zero time 0001-01-01).
EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=timezone.utc)
# Builders' clocks drift; a few minutes ahead is still a real build time.
FUTURE_SKEW = timedelta(minutes=5)

# Reasons a timestamp is unknown (the plan reports them verbatim).
MISSING = "missing"
UNPARSABLE = "unparsable"
BEFORE_2000 = "before_2000"
FUTURE = "future"
CHILDREN_UNKNOWN = "children_unknown"

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# quay's convert_to_timedelta: exactly one '<number><unit>' pair.
_EXPIRES_AFTER = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

DURATION_HINT = "write a number and a unit (w, d, h, m, s), e.g. 14d, 12h, 30m, 2w or 1d12h"
#: An upper-case M: minutes here, months to many readers (and in ISO 8601 dates, Java, ...).
_MONTHS_OR_MINUTES = re.compile(r"(\d*)M")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 date-time into an aware UTC datetime.

    Accepts ``Z``/``z`` or a ``+hh:mm`` offset and any number of fractional
    digits (Go writes nanoseconds; Python keeps microseconds, the rest is
    truncated). Raises ``ValueError`` for anything else.
    """
    match = _RFC3339.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if offset in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{text!r} has an impossible UTC offset")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    # datetime() itself rejects month 13, Feb 30, second 60 and the like.
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz).astimezone(timezone.utc)


def format_timestamp(value: datetime) -> str:
    """Render an aware datetime as RFC 3339 UTC with a ``Z`` (the plan's format)."""
    text = value.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``14d``, ``12h``, ``30m``, ``2w`` or ``1d12h``.

    Units must appear at most once each, largest first (w, d, h, m, s).
    Raises ``ValueError`` with :data:`DURATION_HINT` otherwise; callers add
    which option was wrong. Units are case-insensitive (``7D`` is ``7d``, as
    1.0.0 read it) except ``M``, refused: someone writing ``6M`` may mean six
    months, and would get six minutes.
    """
    if not isinstance(text, str) or isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration; {DURATION_HINT}")
    months = _MONTHS_OR_MINUTES.search(text)
    if months is not None:
        count = int(months.group(1) or 1)
        raise ValueError(f"{text.strip()!r} is ambiguous: write {text.strip().replace('M', 'm')} for minutes or "
                         f"{count * 30}d for about {count} month{'' if count == 1 else 's'}")
    cleaned = text.strip().lower()
    match = _DURATION.match(cleaned)
    if not cleaned or match is None:
        raise ValueError(f"{text!r} is not a duration; {DURATION_HINT}")
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """A duration as :func:`parse_duration` reads it, in whole seconds: ``1d12h``, ``14d``, ``0s``.

    Days are the largest unit: people write retention periods in days (``7d``, ``30d``, ``90d``), and a
    result that echoed ``30d`` as ``4w2d`` would read as another value than the one given (``2w`` reads
    back as ``14d``, the same duration).
    """
    seconds = int(value.total_seconds())
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_expires_after(value: str | None) -> timedelta | None:
    """Parse a ``quay.expires-after`` style value (``2w``, ``10d``, ``12h``).

    Quay semantics: one number and one unit out of s, m, h, d, w; an invalid
    or non-positive value is ignored (the image does not expire), so this
    returns ``None`` rather than raising.
    """
    if not isinstance(value, str):
        return None
    match = _EXPIRES_AFTER.match(value.strip())
    if match is None:
        return None
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return timedelta(seconds=seconds) if seconds > 0 else None


@dataclass(frozen=True)
class TimestampSource:
    """Where to read a digest's time: ``annotation``, ``label`` or ``created``.

    ``annotation`` and ``label`` take a key (default
    :data:`OCI_CREATED`); ``created`` is the image config's field.
    """

    kind: str
    key: str | None = None

    @classmethod
    def parse(cls, text: str) -> "TimestampSource":
        """Parse ``annotation``, ``label``, ``created``, ``annotation:NAME`` or ``label:NAME``."""
        if not isinstance(text, str):
            raise InvalidInputError(
                f"timestamp_sources entry {text!r} is not a string; {TIMESTAMP_SOURCES_HINT}"
            )
        kind, sep, key = text.strip().partition(":")
        if kind == "created" and not sep:
            return cls("created")
        if kind in ("annotation", "label"):
            if sep and not key.strip():
                raise InvalidInputError(
                    f"timestamp_sources entry {text!r} names no key after ':'; {TIMESTAMP_SOURCES_HINT}"
                )
            return cls(kind, key.strip() if sep else OCI_CREATED)
        raise InvalidInputError(f"timestamp_sources entry {text!r} is not known; {TIMESTAMP_SOURCES_HINT}")

    @property
    def name(self) -> str:
        """Canonical text, as reported in a plan's ``timestamp_source``."""
        return self.kind if self.key is None else f"{self.kind}:{self.key}"

    def read(self, manifest: "TimestampInputs") -> str | None:
        """The raw value this source gives for one manifest, or None when absent."""
        if self.kind == "created":
            return manifest.created
        values = manifest.annotations if self.kind == "annotation" else manifest.labels
        if self.key is None:
            return None
        return (values or {}).get(self.key)


TIMESTAMP_SOURCES_HINT = (
    "write annotation, label, created, annotation:NAME or label:NAME "
    f"(annotation and label alone mean the {OCI_CREATED} key)"
)
DEFAULT_TIMESTAMP_SOURCES: tuple[TimestampSource, ...] = (
    TimestampSource("annotation", OCI_CREATED),
    TimestampSource("label", OCI_CREATED),
    TimestampSource("created"),
)


class TimestampInputs(Protocol):
    """What this module reads from a manifest (the planner's snapshot records fit)."""

    # Read-only properties, so frozen records (the planner's) fit.
    @property
    def annotations(self) -> Mapping[str, str]: ...  # pragma: no cover - protocol

    @property
    def labels(self) -> Mapping[str, str]: ...  # pragma: no cover - protocol

    @property
    def created(self) -> str | None: ...  # pragma: no cover - protocol

    @property
    def children(self) -> Sequence[str]: ...  # pragma: no cover - protocol

    @property
    def is_index(self) -> bool: ...  # pragma: no cover - protocol


@dataclass(frozen=True)
class Timestamp:
    """A digest's time, or why it is unknown.

    ``source`` is the :attr:`TimestampSource.name` that gave the time;
    ``via`` is the child digest an index borrowed it from. ``reason`` is
    one of the module's reason constants when ``value`` is None, and
    ``detail`` explains it for a person.
    """

    value: datetime | None
    source: str | None = None
    via: str | None = None
    reason: str | None = None
    detail: str = ""

    @property
    def known(self) -> bool:
        """True when the time can be trusted for age decisions."""
        return self.value is not None

    def age(self, now: datetime) -> timedelta | None:
        """How long before ``now`` the digest was made (None when unknown)."""
        return None if self.value is None else now - self.value

    def iso(self) -> str | None:
        """The time as RFC 3339 UTC, or None."""
        return None if self.value is None else format_timestamp(self.value)


def judge_timestamp(text: str | None, now: datetime) -> tuple[datetime | None, str | None]:
    """Parse one raw value and check it is plausible: ``(time, None)`` or ``(None, reason)``."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None, MISSING
    try:
        value = parse_rfc3339(text)
    except (TypeError, ValueError):
        return None, UNPARSABLE
    if value < EARLIEST_PLAUSIBLE:
        return None, BEFORE_2000
    if value > now + FUTURE_SKEW:
        return None, FUTURE
    return value, None


def _own_timestamp(
    manifest: TimestampInputs, sources: Iterable[TimestampSource], now: datetime
) -> tuple[Timestamp, list[str]]:
    """Try the sources in order; return the first plausible time and the problems seen."""
    problems: list[str] = []
    first_reason: str | None = None
    for source in sources:
        if manifest.is_index and source.kind != "annotation":
            continue  # an index has no config, hence no labels and no created
        raw = source.read(manifest)
        value, reason = judge_timestamp(raw, now)
        if value is not None:
            return Timestamp(value, source=source.name), problems
        if reason is not None and reason != MISSING:
            first_reason = first_reason or reason
            problems.append(f"{source.name} {raw!r} is {reason.replace('_', ' ')}")
        else:
            problems.append(f"{source.name} is missing")
    return Timestamp(None, reason=first_reason or MISSING, detail="; ".join(problems)), problems


def resolve_timestamps(
    manifests: Mapping[str, TimestampInputs],
    sources: Sequence[TimestampSource],
    now: datetime,
) -> dict[str, Timestamp]:
    """Resolve every manifest's :class:`Timestamp` (indexes from their children when needed).

    ``manifests`` maps digest to record; children missing from it are
    ignored. ``now`` must be timezone-aware.
    """
    resolved: dict[str, Timestamp] = {}

    def resolve(digest: str, visiting: frozenset[str]) -> Timestamp:
        if digest in resolved:
            return resolved[digest]
        manifest = manifests[digest]
        own, problems = _own_timestamp(manifest, sources, now)
        if own.known or not manifest.is_index:
            result = own
        else:
            result = _from_children(digest, manifest, problems, visiting, resolve, manifests)
        resolved[digest] = result
        return result

    for digest in sorted(manifests):
        resolve(digest, frozenset())
    return resolved


def _from_children(
    digest: str,
    manifest: TimestampInputs,
    problems: list[str],
    visiting: frozenset[str],
    resolve: Callable[[str, frozenset[str]], Timestamp],
    known_digests: Mapping[str, object],
) -> Timestamp:
    """An index without a plausible annotation takes its newest known child's time."""
    newest: tuple[datetime, str, Timestamp] | None = None
    seen_child = False
    for child in manifest.children:
        # A cycle cannot occur in content-addressed data, but a bad snapshot must not hang us.
        if child == digest or child in visiting or child not in known_digests:
            continue
        child_ts = resolve(child, visiting | {digest})
        seen_child = True
        if child_ts.value is not None and (newest is None or (child_ts.value, child) > newest[:2]):
            newest = (child_ts.value, child, child_ts)
    if newest is not None:
        value, child, child_ts = newest
        return Timestamp(value, source=child_ts.source, via=child_ts.via or child)
    reason = CHILDREN_UNKNOWN if seen_child else MISSING
    detail = "; ".join(problems + ["no child has a known time" if seen_child else "no children to take a time from"])
    return Timestamp(None, reason=reason, detail=detail)


def label_or_annotation(manifest: TimestampInputs, key: str) -> str | None:
    """A config label's value, else the manifest annotation of the same key, else None."""
    value = (manifest.labels or {}).get(key)
    if value is None:
        value = (manifest.annotations or {}).get(key)
    return value
