"""Unit tests for timestamps.py: RFC 3339, durations, quay lifetimes and timestamp sources."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._model.timestamps import (
    BEFORE_2000,
    CHILDREN_UNKNOWN,
    DEFAULT_TIMESTAMP_SOURCES,
    FUTURE,
    MISSING,
    OCI_CREATED,
    UNPARSABLE,
    Timestamp,
    TimestampSource,
    format_duration,
    format_timestamp,
    judge_timestamp,
    label_or_annotation,
    parse_duration,
    parse_expires_after,
    parse_rfc3339,
    resolve_timestamps,
)

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Rec:
    """The smallest thing resolve_timestamps reads (the planner's ManifestRecord has the same shape)."""

    annotations: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    created: str | None = None
    children: tuple = ()
    index: bool = False

    @property
    def is_index(self) -> bool:
        return self.index


# -- RFC 3339 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-06T07:08:09Z", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06t07:08:09z", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06 07:08:09Z", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("2024-05-06T07:08:09.5Z", datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=UTC)),
        ("2024-05-06T07:08:09.123456Z", datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
        # Go writes nanoseconds; the extra digits are truncated, not rounded.
        ("2024-05-06T07:08:09.123456789Z", datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
        ("2024-05-06T07:08:09+02:00", datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC)),
        ("2024-05-06T07:08:09-05:30", datetime(2024, 5, 6, 12, 38, 9, tzinfo=UTC)),
        ("2024-05-06T23:30:00.25-01:00", datetime(2024, 5, 7, 0, 30, 0, 250000, tzinfo=UTC)),
        ("  2024-05-06T07:08:09Z\n", datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339_accepts_zulu_offsets_and_fractions(text, expected):
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-06T07:08:09",  # no offset: ambiguous
        "2024-05-06",
        "2024-05-06T07:08Z",
        "2024-13-06T07:08:09Z",
        "2024-02-30T07:08:09Z",
        "2024-05-06T24:00:00Z",
        "2024-05-06T07:08:60Z",
        "2024-05-06T07:08:09+0200",  # not RFC 3339
        "2024-05-06T07:08:09+25:00",
        "2024-05-06T07:08:09.Z",
        "yesterday",
        "",
        "1714979289",
    ],
)
def test_parse_rfc3339_rejects_everything_else(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_parse_rfc3339_rejects_non_strings():
    with pytest.raises(ValueError):
        parse_rfc3339(1714979289)


def test_format_timestamp_is_utc_with_z():
    assert format_timestamp(parse_rfc3339("2024-05-06T07:08:09+02:00")) == "2024-05-06T05:08:09Z"
    assert format_timestamp(datetime(2024, 1, 1, 0, 0, 0, 1500, tzinfo=UTC)) == "2024-01-01T00:00:00.001500Z"


# -- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("14d", timedelta(days=14)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("0d", timedelta(0)),
        ("14D", timedelta(days=14)),
        (" 3h ", timedelta(hours=3)),
        ("90d", timedelta(days=90)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2 weeks", "12", "1h1d", "-1d", "1.5d", "d", "1y", "1d1d", "P14D"])
def test_parse_duration_rejects_with_a_hint(text):
    with pytest.raises(ValueError, match="e.g. 14d, 12h, 30m, 2w or 1d12h"):
        parse_duration(text)


@pytest.mark.parametrize("text, line", [
    ("6M", "'6M' is ambiguous: write 6m for minutes or 180d for about 6 months"),
    (" 1M ", "'1M' is ambiguous: write 1m for minutes or 30d for about 1 month"),
    ("1D6M", "'1D6M' is ambiguous: write 1D6m for minutes or 180d for about 6 months"),
])
def test_parse_duration_refuses_an_upper_case_m(text, line):
    """Minutes to the parser, months to many readers: refused in one line that offers both."""
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == line


@pytest.mark.parametrize("text, expected", [("7D", timedelta(days=7)), ("2W", timedelta(weeks=2)),
                                            ("12H", timedelta(hours=12)), ("30S", timedelta(seconds=30)),
                                            ("1D12h", timedelta(days=1, hours=12))])
def test_other_upper_case_units_still_read(text, expected):
    """1.0.0 read units case-insensitively; playbooks writing 7D keep working."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("value", [None, 14, True, 1.5])
def test_parse_duration_rejects_non_strings(value):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


@pytest.mark.parametrize("text", ["7d", "30d", "90d", "1d12h", "30m", "9d3h4m5s", "0s"])
def test_format_duration_round_trips(text):
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(("text", "echoed"), [("2w", "14d"), ("1w", "7d"), ("1w2d3h4m5s", "9d3h4m5s"), ("48h", "2d")])
def test_format_duration_says_weeks_in_days(text, echoed):
    # A result echoed 7d as 1w and 30d as 4w2d: days are how retention periods are written.
    assert format_duration(parse_duration(text)) == echoed


# -- quay.expires-after ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2w", timedelta(weeks=2)),
        ("10d", timedelta(days=10)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        (" 3d ", timedelta(days=3)),
    ],
)
def test_parse_expires_after_follows_quay(value, expected):
    assert parse_expires_after(value) == expected


@pytest.mark.parametrize("value", [None, "", "0d", "1d12h", "-1d", "abc", "2W", "1y", "12", 12])
def test_parse_expires_after_ignores_what_quay_ignores(value):
    # Quay logs and ignores an invalid or non-positive value: the image simply does not expire.
    assert parse_expires_after(value) is None


# -- sources -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kind, key, name",
    [
        ("annotation", "annotation", OCI_CREATED, f"annotation:{OCI_CREATED}"),
        ("label", "label", OCI_CREATED, f"label:{OCI_CREATED}"),
        ("created", "created", None, "created"),
        ("annotation:build.date", "annotation", "build.date", "annotation:build.date"),
        ("label:com.example.built", "label", "com.example.built", "label:com.example.built"),
    ],
)
def test_timestamp_source_parse(text, kind, key, name):
    source = TimestampSource.parse(text)
    assert (source.kind, source.key, source.name) == (kind, key, name)


@pytest.mark.parametrize("text", ["config", "created:foo", "annotation:", "label: ", "", 5, None])
def test_timestamp_source_parse_rejects_with_valid_forms(text):
    with pytest.raises(InvalidInputError, match="annotation, label, created, annotation:NAME or label:NAME"):
        TimestampSource.parse(text)


def test_default_sources_are_annotation_label_created():
    assert [s.name for s in DEFAULT_TIMESTAMP_SOURCES] == [
        f"annotation:{OCI_CREATED}",
        f"label:{OCI_CREATED}",
        "created",
    ]


@pytest.mark.parametrize(
    "text, reason",
    [
        (None, MISSING),
        ("", MISSING),
        ("  ", MISSING),
        ("not a date", UNPARSABLE),
        ("1970-01-01T00:00:00Z", BEFORE_2000),  # reproducible builds (SOURCE_DATE_EPOCH=0)
        ("0001-01-01T00:00:00Z", BEFORE_2000),  # Go's zero time
        ("1999-12-31T23:59:59Z", BEFORE_2000),
        ("2026-03-01T12:05:01Z", FUTURE),  # now + 5 min + 1 s
        ("2099-01-01T00:00:00Z", FUTURE),
    ],
)
def test_judge_timestamp_unknown_reasons(text, reason):
    assert judge_timestamp(text, NOW) == (None, reason)


@pytest.mark.parametrize(
    "text", ["2000-01-01T00:00:00Z", "2026-03-01T12:05:00Z", "2026-03-01T12:04:59Z", "2025-01-01T00:00:00Z"]
)
def test_judge_timestamp_plausible(text):
    value, reason = judge_timestamp(text, NOW)
    assert reason is None and value == parse_rfc3339(text)


def _resolve(records, sources=DEFAULT_TIMESTAMP_SOURCES):
    return resolve_timestamps(records, sources, NOW)


def test_first_source_in_order_wins():
    rec = Rec(
        annotations={OCI_CREATED: "2025-01-01T00:00:00Z"},
        labels={OCI_CREATED: "2025-02-01T00:00:00Z"},
        created="2025-03-01T00:00:00Z",
    )
    assert _resolve({"d": rec})["d"] == Timestamp(parse_rfc3339("2025-01-01T00:00:00Z"), source=f"annotation:{OCI_CREATED}")
    order = tuple(TimestampSource.parse(s) for s in ("created", "label", "annotation"))
    assert _resolve({"d": rec}, order)["d"].source == "created"


def test_implausible_source_falls_back_to_next():
    rec = Rec(annotations={OCI_CREATED: "1970-01-01T00:00:00Z"}, labels={OCI_CREATED: "garbage"},
              created="2025-03-01T00:00:00Z")
    ts = _resolve({"d": rec})["d"]
    assert ts.known and ts.source == "created" and ts.iso() == "2025-03-01T00:00:00Z"


def test_all_sources_bad_is_unknown_with_first_problem_and_every_detail():
    rec = Rec(annotations={}, labels={OCI_CREATED: "1970-01-01T00:00:00Z"}, created="2099-01-01T00:00:00Z")
    ts = _resolve({"d": rec})["d"]
    assert not ts.known and ts.value is None and ts.age(NOW) is None and ts.iso() is None
    assert ts.reason == BEFORE_2000
    assert f"annotation:{OCI_CREATED} is missing" in ts.detail
    assert "before 2000" in ts.detail and "future" in ts.detail


def test_nothing_at_all_is_missing():
    ts = _resolve({"d": Rec()})["d"]
    assert ts.reason == MISSING and not ts.known


def test_named_label_and_annotation_sources():
    rec = Rec(annotations={"build.date": "2025-05-05T05:05:05Z"}, labels={"built": "2025-06-06T06:06:06+00:00"},
              created="2025-01-01T00:00:00Z")
    by_label = _resolve({"d": rec}, (TimestampSource.parse("label:built"),))["d"]
    by_annotation = _resolve({"d": rec}, (TimestampSource.parse("annotation:build.date"),))["d"]
    assert (by_label.source, by_label.iso()) == ("label:built", "2025-06-06T06:06:06Z")
    assert (by_annotation.source, by_annotation.iso()) == ("annotation:build.date", "2025-05-05T05:05:05Z")


def test_index_with_annotation_uses_its_own_time():
    records = {
        "i": Rec(index=True, annotations={OCI_CREATED: "2025-01-01T00:00:00Z"}, children=("c",)),
        "c": Rec(created="2025-06-01T00:00:00Z"),
    }
    ts = _resolve(records)["i"]
    assert ts.iso() == "2025-01-01T00:00:00Z" and ts.via is None


def test_index_without_annotation_takes_newest_child():
    records = {
        "i": Rec(index=True, children=("c1", "c2", "c3")),
        "c1": Rec(created="2025-01-01T00:00:00Z"),
        "c2": Rec(created="2025-06-01T00:00:00Z"),
        "c3": Rec(created="1970-01-01T00:00:00Z"),  # unknown children are ignored
    }
    ts = _resolve(records)["i"]
    assert (ts.iso(), ts.source, ts.via) == ("2025-06-01T00:00:00Z", "created", "c2")


def test_index_ignores_label_and_created_sources_for_itself():
    # An index has no config: even if a snapshot carried a created for it, only annotations count.
    records = {"i": Rec(index=True, created="2025-01-01T00:00:00Z", children=("c",)),
               "c": Rec(created="2024-01-01T00:00:00Z")}
    assert _resolve(records)["i"].via == "c"


def test_nested_index_reports_the_leaf_it_borrowed_from():
    records = {
        "outer": Rec(index=True, children=("inner",)),
        "inner": Rec(index=True, children=("leaf",)),
        "leaf": Rec(created="2025-02-02T00:00:00Z"),
    }
    ts = _resolve(records)["outer"]
    assert ts.iso() == "2025-02-02T00:00:00Z" and ts.via == "leaf"


def test_index_whose_children_are_all_unknown_is_unknown():
    records = {"i": Rec(index=True, children=("c",)), "c": Rec(created="1970-01-01T00:00:00Z")}
    ts = _resolve(records)["i"]
    assert ts.reason == CHILDREN_UNKNOWN and "no child has a known time" in ts.detail


def test_index_without_children_in_snapshot_is_missing():
    ts = _resolve({"i": Rec(index=True, children=("absent",))})["i"]
    assert ts.reason == MISSING and not ts.known


def test_index_with_bad_annotation_falls_back_to_children():
    records = {"i": Rec(index=True, annotations={OCI_CREATED: "2099-01-01T00:00:00Z"}, children=("c",)),
               "c": Rec(created="2025-01-01T00:00:00Z")}
    ts = _resolve(records)["i"]
    assert ts.via == "c" and ts.iso() == "2025-01-01T00:00:00Z"


def test_cycles_in_a_bad_snapshot_terminate():
    records = {"a": Rec(index=True, children=("b",)), "b": Rec(index=True, children=("a",))}
    result = _resolve(records)
    assert not result["a"].known and not result["b"].known


def test_age_is_relative_to_now():
    ts = Timestamp(parse_rfc3339("2026-02-27T12:00:00Z"), source="created")
    assert ts.age(NOW) == timedelta(days=2)


def test_label_or_annotation_prefers_label():
    assert label_or_annotation(Rec(labels={"k": "L"}, annotations={"k": "A"}), "k") == "L"
    assert label_or_annotation(Rec(annotations={"k": "A"}), "k") == "A"
    assert label_or_annotation(Rec(), "k") is None
