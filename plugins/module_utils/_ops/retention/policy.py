# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retention policy model: rules, tag selectors, shorthands and their validation.

Pure data and validation, no I/O. :func:`build_policy` turns the options a
user writes (``rules``, the shorthands, guardrails) into a frozen
:class:`RetentionPolicy`, or raises :class:`InvalidInputError` naming the
rule (by name and index) and saying what to write instead.

Rule semantics (the planner in ``plan.py`` applies them):

- every rule is evaluated against every tag; a tag matched by any ``keep``
  rule is kept whatever the order ("keep beats delete"); otherwise a tag
  matched by a ``delete`` rule is condemned; otherwise ``default_action``
  applies. Order only fixes how matches are listed in the plan.
- a rule's tags are a :class:`TagSelection` (``_model/tag_selection.py``, the
  one tag selector of the collection): a tag is selected when it matches any
  entry of the rule's one selector kind (``names``, ``prefix``, ``glob`` or
  ``regex``) and no ``exclude_*`` entry; a rule without positive selectors
  selects every tag. A rule gives at most one positive kind: kinds combine as a
  union everywhere now, and 1.0 ANDed them, so a rule that mixed them is refused
  rather than silently widened. Regexes are full matches (always anchored);
  globs are :mod:`fnmatch` patterns, case-sensitive.
- the other conditions of a rule (ages, labels) are ANDed with its tag selection.
- ``older_than`` / ``newer_than`` compare the digest's age (strictly).
- ``expires_after_label`` (delete rules) is met when the digest's label (or
  annotation) of that name holds a quay-style lifetime (``2w``, ``10d``,
  ``12h``) that has run out, counted from the digest's timestamp.
- ``most_recent: N`` (keep rules) is applied last: of the digests that have
  a tag meeting every other condition of the rule, the N newest by
  ``order_by`` are matched. It counts digests, not tags.
- ``untagged: true`` makes a rule select untagged digests that nothing in
  the repository owns (not an index child, not a referrer, not a cosign
  artifact) instead of tags; it cannot be combined with tag selectors or
  ``most_recent``. Without such a rule untagged digests are kept; the
  policy-level ``untagged: delete`` adds one.
- ``unsigned: {verify: {...}, grace: 7d}`` (delete rules) is met when the
  digest is older than ``grace`` and has no valid signature under ``verify``
  (the very block ``registry_tag`` and ``registry_copy`` take: keys, keyless
  identities, annotations, referrers). The planner is told which digests
  were checked and what the check said (``unsigned.py`` reads them, before
  planning and only for the digests the rule could condemn); a digest inside
  its grace is never checked and is reported as spared (``unsigned_grace``).
- cosign tags (``sha256-<hex>.sig`` / ``.att`` / ``.sbom``) and referrers
  fallback index tags (``sha256-<hex>``) are never matched by rules: they
  follow the digest they name.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    TagSelection,
    compile_tag_pattern,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.timestamps import (
    DEFAULT_TIMESTAMP_SOURCES,
    TimestampSource,
    format_duration,
    parse_duration,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    VerifyPolicy,
    parse_verify,
)

KEEP = "keep"
DELETE = "delete"
ACTIONS = (KEEP, DELETE)
ORDER_BY = ("age", "semver", "tag_name")
ON_UNKNOWN_AGE = ("keep", "fail")
REFERRERS = ("follow_subject",)
TAG_DELETE_METHODS = ("auto", "dummy_manifest", "never")
UNTAGGED = ("keep", "delete")

SELECTOR_KINDS = ("names", "prefix", "glob", "regex")
RULE_KEYS = (
    ("name", "action")
    + SELECTOR_KINDS
    + tuple(f"exclude_{kind}" for kind in SELECTOR_KINDS)
    + ("most_recent", "order_by", "older_than", "newer_than", "expires_after_label", "untagged", "unsigned")
)
# Options of registry_prune that describe the policy (others, like auth, are ignored here).
POLICY_KEYS = (
    "rules",
    "default_action",
    "keep_latest",
    "older_than",
    "match",
    "protect",
    "untagged",
    "timestamp_sources",
    "on_unknown_age",
    "referrers",
    "tag_delete_method",
    "grace_period",
    "max_deletions",
    "max_delete_ratio",
    "min_keep",
    "allow_empty_repository",
    "untag_kept_images",
)
SHORTHANDS = ("keep_latest", "older_than", "match")


def _where(name: str | None, index: int) -> str:
    """How a message names a rule: ``rule 'old-dev' (rules[2])``, or ``rules[2]`` when unnamed."""
    return f"rule '{name}' (rules[{index}])" if name else f"rules[{index}]"


def _string_list(value: Any, label: str) -> tuple[str, ...]:
    """Accept one string or a list of strings; anything else is an error."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InvalidInputError(f"{label} must be a string or a list of strings, got {value!r}")


def _duration(value: Any, label: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InvalidInputError(f"{label} {exc}") from None


def _count(value: Any, label: str, hint: str) -> int | None:
    """A non-negative int (bools are not counts)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{label} must be a whole number 0 or more, got {value!r}; {hint}")
    return value


def _choice(value: Any, choices: Sequence[str], label: str, default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        raise InvalidInputError(f"{label} {value!r} is not known; write one of {', '.join(choices)}")
    return value


#: Rule keys -> the :class:`TagSelection` field each fills.
_SELECTION_FIELDS = {
    "names": "names", "prefix": "prefixes", "glob": "globs", "regex": "patterns",
    "exclude_names": "exclude_names", "exclude_prefix": "exclude_prefixes", "exclude_glob": "exclude_globs",
    "exclude_regex": "exclude_patterns",
}


def rule_selection(data: Mapping[str, Any], where: str) -> TagSelection:
    """A rule's tag selectors (``names``/``prefix``/``glob``/``regex`` and ``exclude_*``) as a :class:`TagSelection`."""
    values: dict[str, Any] = {}
    for key, attribute in _SELECTION_FIELDS.items():
        label = f"{where}: {key}"
        items = _string_list(data.get(key), label)
        values[attribute] = tuple(compile_tag_pattern(i, label) for i in items) if key.endswith("regex") else items
    given = [kind for kind in SELECTOR_KINDS if values[_SELECTION_FIELDS[kind]]]
    if len(given) > 1:
        raise InvalidInputError(
            f"{where}: {' and '.join(given)} in one rule; a rule takes one kind of tag selector. Tag selectors "
            "combine as a union (a tag matching any entry), and 1.0.0 required a tag to match every kind, "
            "so a rule mixing them is refused rather than silently selecting more. For tags matching any "
            "of them, split the rule into one rule per kind or write them all as one regex list (names "
            "as themselves, prefix pr- as 'pr-.*', glob '*-lts' as '.*-lts'); for tags matching all of "
            "them, write all of them as one regex (e.g. regex: ['pr-.*-amd64'])"
        )
    return TagSelection(**values)


def selection_to_rule_dict(selection: TagSelection) -> dict[str, list[str]]:
    """The rule keys a :class:`TagSelection` came from, only those set, regexes as their source."""
    out: dict[str, list[str]] = {}
    for key, attribute in _SELECTION_FIELDS.items():
        values = getattr(selection, attribute)
        if values:
            out[key] = [v if isinstance(v, str) else v.pattern for v in values]
    return out


#: The keys of a rule's ``unsigned`` condition.
UNSIGNED_KEYS = ("verify", "grace")
UNSIGNED_FORM = ("unsigned: {verify: {keys: [...]} or {keyless: [...]}, grace: 7d} (verify is the block "
                 "registry_tag takes; grace is how long a new image has to get its signature)")


@dataclass(frozen=True, eq=False)
class UnsignedCondition:
    """A delete rule's ``unsigned`` condition: no valid signature under ``verify`` after ``grace``.

    ``raw`` is the ``verify`` block as written: the I/O step builds its verifier from it (key
    files read there, once, before any request).
    """

    verify: VerifyPolicy
    raw: Mapping[str, Any]
    grace: timedelta

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the verify block as given, the grace as a duration)."""
        return {"verify": dict(self.raw), "grace": format_duration(self.grace)}


def parse_unsigned(value: Any, where: str) -> UnsignedCondition | None:
    """A rule's ``unsigned`` condition (None when absent); one :class:`InvalidInputError` line on misuse."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{where}: unsigned must be a dict, got {value!r}; write {UNSIGNED_FORM}")
    given = {k: v for k, v in value.items() if v is not None}
    unknown = sorted(str(k) for k in given if k not in UNSIGNED_KEYS)
    if unknown:
        raise InvalidInputError(f"{where}: unsigned has unknown key(s) {', '.join(unknown)}; write {UNSIGNED_FORM}")
    missing = [k for k in UNSIGNED_KEYS if k not in given]
    if missing:
        raise InvalidInputError(f"{where}: unsigned needs {' and '.join(missing)}; write {UNSIGNED_FORM}")
    raw = given["verify"]
    try:
        verify = parse_verify(raw)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: unsigned.{exc.message}") from None
    if verify is None:  # parse_verify only returns None for None, which was refused above
        raise InvalidInputError(f"{where}: unsigned needs verify; write {UNSIGNED_FORM}")
    grace = _duration(given["grace"], f"{where}: unsigned.grace")
    if grace is None:
        raise InvalidInputError(f"{where}: unsigned needs grace; write {UNSIGNED_FORM}")
    # Ansible fills the options not given with None: the block shown is the one written.
    return UnsignedCondition(verify, {k: v for k, v in raw.items() if v is not None}, grace)


@dataclass(frozen=True)
class Rule:
    """One ordered retention rule; its conditions are ANDed."""

    name: str
    action: str
    selector: TagSelection = field(default_factory=TagSelection)
    most_recent: int | None = None
    order_by: str = "age"
    older_than: timedelta | None = None
    newer_than: timedelta | None = None
    expires_after_label: str | None = None
    untagged: bool = False
    unsigned: UnsignedCondition | None = None

    @property
    def uses_age(self) -> bool:
        """Whether the rule's outcome depends on a digest's timestamp."""
        return (
            self.older_than is not None
            or self.unsigned is not None
            or self.newer_than is not None
            or self.expires_after_label is not None
            or (self.most_recent is not None and self.order_by == "age")
        )

    def to_dict(self) -> dict[str, Any]:
        """The compiled rule as plain data (shows users what shorthands became)."""
        out: dict[str, Any] = {"name": self.name, "action": self.action}
        out.update(selection_to_rule_dict(self.selector))
        if self.most_recent is not None:
            out["most_recent"] = self.most_recent
            out["order_by"] = self.order_by
        for key in ("older_than", "newer_than"):
            value = getattr(self, key)
            if value is not None:
                out[key] = format_duration(value)
        if self.expires_after_label is not None:
            out["expires_after_label"] = self.expires_after_label
        if self.untagged:
            out["untagged"] = True
        if self.unsigned is not None:
            out["unsigned"] = self.unsigned.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, index: int) -> Rule:
        """Validate one entry of ``rules``; errors name the rule and say what to write."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"rules[{index}] must be a dict such as {{name: old-dev, action: delete, prefix: dev-, "
                f"older_than: 14d}}, got {data!r}"
            )
        name = data.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidInputError(f"rules[{index}]: name must be a non-empty string, got {name!r}")
        where = _where(name, index)
        unknown = sorted(str(k) for k in data if k not in RULE_KEYS)
        if unknown:
            raise InvalidInputError(
                f"{where}: unknown key(s) {', '.join(unknown)}; a rule takes {', '.join(RULE_KEYS)}"
            )
        action = data.get("action")
        if action not in ACTIONS:
            raise InvalidInputError(f"{where}: action {action!r} is not known; write action: keep or action: delete")
        untagged = data.get("untagged", False)
        if not isinstance(untagged, bool):
            raise InvalidInputError(f"{where}: untagged must be true or false, got {untagged!r}")
        rule = cls(
            name=name or f"rules[{index}]",
            action=action,
            selector=rule_selection(data, where),
            most_recent=_count(
                data.get("most_recent"), f"{where}: most_recent", "it is how many digests to keep, e.g. most_recent: 10"
            ),
            order_by=_choice(data.get("order_by"), ORDER_BY, f"{where}: order_by", "age"),
            older_than=_duration(data.get("older_than"), f"{where}: older_than"),
            newer_than=_duration(data.get("newer_than"), f"{where}: newer_than"),
            expires_after_label=_label_name(data.get("expires_after_label"), where),
            untagged=untagged,
            unsigned=parse_unsigned(data.get("unsigned"), where),
        )
        _check_combination(rule, data, where)
        return rule


def _label_name(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"{where}: expires_after_label must name a label, e.g. expires_after_label: quay.expires-after"
        )
    return value.strip()


def _check_combination(rule: Rule, data: Mapping[str, Any], where: str) -> None:
    """Reject conditions that contradict each other or cannot mean what the user hopes."""
    if rule.action == DELETE and rule.most_recent is not None:
        raise InvalidInputError(
            f"{where}: most_recent on a delete rule would delete the newest digests; to keep the newest N "
            "and delete the rest write two rules: {action: keep, most_recent: N} and {action: delete} "
            "with the same tag selectors"
        )
    if rule.action == KEEP and rule.unsigned is not None:
        raise InvalidInputError(
            f"{where}: unsigned selects images without a valid signature, so it belongs on a delete rule; "
            "write action: delete (signed images are simply not selected)"
        )
    if data.get("order_by") is not None and rule.most_recent is None:
        raise InvalidInputError(
            f"{where}: order_by only orders most_recent; add most_recent: N or remove order_by"
        )
    if rule.action == KEEP and rule.expires_after_label is not None:
        raise InvalidInputError(
            f"{where}: expires_after_label selects expired digests, so it belongs on a delete rule; "
            "write action: delete"
        )
    if (
        rule.older_than is not None
        and rule.newer_than is not None
        and rule.older_than >= rule.newer_than
    ):
        raise InvalidInputError(
            f"{where}: older_than must be shorter than newer_than or the rule can never match; "
            "for a window write e.g. older_than: 7d, newer_than: 30d"
        )
    if rule.untagged and (not rule.selector.is_empty or rule.most_recent is not None):
        raise InvalidInputError(
            f"{where}: untagged: true selects digests without tags, so tag selectors and most_recent "
            "cannot apply; put those in a separate rule"
        )


@dataclass(frozen=True)
class RetentionPolicy:
    """A validated retention policy: ordered rules plus the safety settings."""

    rules: tuple[Rule, ...] = ()
    default_action: str = KEEP
    timestamp_sources: tuple[TimestampSource, ...] = DEFAULT_TIMESTAMP_SOURCES
    on_unknown_age: str = "keep"
    referrers: str = "follow_subject"
    tag_delete_method: str = "auto"
    grace_period: timedelta = timedelta(0)
    max_deletions: int | None = None
    max_delete_ratio: float | None = None
    min_keep: int | None = None
    # Opt-ins to what used to be silent defaults (a prune nobody watches must not surprise): a plan that empties a repository
    # (no tag left, or every digest deleted) is refused unless allow_empty_repository; a digest
    # that stays keeps every tag on it unless untag_kept_images.
    allow_empty_repository: bool = False
    untag_kept_images: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The compiled policy as plain data."""
        return {
            "rules": [rule.to_dict() for rule in self.rules],
            "default_action": self.default_action,
            "timestamp_sources": [source.name for source in self.timestamp_sources],
            "on_unknown_age": self.on_unknown_age,
            "referrers": self.referrers,
            "tag_delete_method": self.tag_delete_method,
            "grace_period": format_duration(self.grace_period),
            "max_deletions": self.max_deletions,
            "max_delete_ratio": self.max_delete_ratio,
            "min_keep": self.min_keep,
            "allow_empty_repository": self.allow_empty_repository,
            "untag_kept_images": self.untag_kept_images,
        }


def compile_shorthands(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Turn ``protect``/``keep_latest``/``older_than``/``match``/``untagged`` into rule dicts.

    The simple case, within the tags matching ``match`` (regexes, default all):
    ``keep_latest: N`` keeps the N newest digests; ``older_than: D`` deletes
    what is older than D; with both, the N newest are kept even when old;
    ``keep_latest`` alone deletes the rest of the matched tags, and ``match``
    alone deletes every matched tag. ``protect`` (regexes) adds a keep rule
    that wins over all of it; ``untagged: delete`` adds a rule deleting
    untagged digests nothing owns.
    """
    rules: list[dict[str, Any]] = []
    # Validate here so errors name the option the user wrote, not a compiled rule.
    protect = list(_string_list(params.get("protect"), "option protect"))
    TagSelection.from_patterns(protect, "option protect")
    if protect:
        rules.append({"name": "protect", "action": KEEP, "regex": protect})
    match = list(_string_list(params.get("match"), "option match"))
    TagSelection.from_patterns(match, "option match")
    scope: dict[str, Any] = {"regex": match} if match else {}
    keep_latest = _count(
        params.get("keep_latest"), "option keep_latest", "it is how many digests to keep, e.g. keep_latest: 10"
    )
    older_than = params.get("older_than")
    _duration(older_than, "option older_than")
    if keep_latest is not None:
        rules.append({"name": "keep_latest", "action": KEEP, "most_recent": keep_latest, **scope})
    if older_than is not None:
        rules.append({"name": "older_than", "action": DELETE, "older_than": older_than, **scope})
    elif keep_latest is not None or match:
        rules.append({"name": "match", "action": DELETE, **scope})
    if _choice(params.get("untagged"), UNTAGGED, "option untagged", "keep") == DELETE:
        rules.append({"name": "untagged", "action": DELETE, "untagged": True})
    return rules


def build_policy(params: Mapping[str, Any]) -> RetentionPolicy:
    """Validate registry_prune's policy options and compile them into a :class:`RetentionPolicy`.

    ``params`` may hold other module options too (they are ignored) and
    ``None`` for options that were not given.
    """
    explicit = params.get("rules")
    if explicit is not None and not isinstance(explicit, (list, tuple)):
        raise InvalidInputError(f"option rules must be a list of rule dicts, got {explicit!r}")
    explicit = list(explicit or [])
    used_shorthands = [key for key in SHORTHANDS if params.get(key) not in (None, [], "")]
    if explicit and used_shorthands:
        raise InvalidInputError(
            f"option(s) {', '.join(used_shorthands)} are shorthands for a simple policy and cannot be "
            "mixed with rules; write them as rules instead, e.g. {name: keep-latest, action: keep, "
            "most_recent: 10} and {name: old, action: delete, older_than: 30d}"
        )
    # Explicit rules keep their own index so messages point at what the user wrote.
    user_rules = [Rule.from_dict(data, index) for index, data in enumerate(explicit)]
    shorthand = [Rule.from_dict(data, index) for index, data in enumerate(compile_shorthands(params))]
    # protect goes first so it reads as the guard it is; untagged goes last.
    rules = [r for r in shorthand if r.name == "protect"] + user_rules
    rules += [r for r in shorthand if r.name != "protect"]
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise InvalidInputError(
                f"two rules are named '{rule.name}'; give each rule its own name so the plan can say which "
                "rule matched (protect, keep_latest, older_than, match and untagged are taken by the "
                "shorthand options)"
            )
        seen.add(rule.name)
    return RetentionPolicy(
        rules=tuple(rules),
        default_action=_choice(params.get("default_action"), ACTIONS, "option default_action", KEEP),
        timestamp_sources=_timestamp_sources(params.get("timestamp_sources")),
        on_unknown_age=_choice(params.get("on_unknown_age"), ON_UNKNOWN_AGE, "option on_unknown_age", "keep"),
        referrers=_choice(params.get("referrers"), REFERRERS, "option referrers", "follow_subject"),
        tag_delete_method=_choice(
            params.get("tag_delete_method"), TAG_DELETE_METHODS, "option tag_delete_method", "auto"
        ),
        grace_period=_duration(params.get("grace_period"), "option grace_period") or timedelta(0),
        max_deletions=_count(
            params.get("max_deletions"), "option max_deletions",
            "it caps how many digests one run may delete, e.g. max_deletions: 100",
        ),
        max_delete_ratio=_ratio(params.get("max_delete_ratio")),
        min_keep=_count(
            params.get("min_keep"), "option min_keep",
            "it is how many tagged digests each repository must keep, e.g. min_keep: 5",
        ),
        allow_empty_repository=_flag(params.get("allow_empty_repository"), "option allow_empty_repository"),
        untag_kept_images=_flag(params.get("untag_kept_images"), "option untag_kept_images"),
    )


def _flag(value: Any, label: str) -> bool:
    """A boolean option; unset means false (the safe side)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInputError(f"{label} must be true or false, got {value!r}")
    return value


def _timestamp_sources(value: Any) -> tuple[TimestampSource, ...]:
    if value is None:
        return DEFAULT_TIMESTAMP_SOURCES
    entries = _string_list(value, "option timestamp_sources")
    if not entries:
        raise InvalidInputError(
            "option timestamp_sources is empty, so no image would ever have a known age; "
            "leave it out for the default [annotation, label, created]"
        )
    return tuple(TimestampSource.parse(entry) for entry in entries)


def _ratio(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidInputError(
            f"option max_delete_ratio must be a number from 0 to 1 (the share of a repository's digests "
            f"one run may delete), e.g. max_delete_ratio: 0.5; got {value!r}"
        )
    return float(value)
