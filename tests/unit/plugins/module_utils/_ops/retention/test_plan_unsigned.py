"""Unit tests for _ops/retention/plan.py's ``unsigned`` rules: which digests are checked, which are
condemned (with what was checked), and which the grace, a keep rule or ``in_use`` spare."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.in_use import (
    match_in_use,
    parse_in_use,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    SignatureCheck,
    plan_retention,
    unsigned_candidates,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy

from .test_plan import NOW, Repo, actions, by_digest, days_ago, skipped

KEY = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
VERIFY = {"keys": [KEY]}
RULE = {"name": "unsigned", "action": "delete", "unsigned": {"verify": VERIFY, "grace": "7d"}}


def three() -> tuple[Repo, dict[str, str]]:
    repo = Repo("reg.example.com/team/app")
    d = {
        "old_unsigned": repo.image("old-unsigned", "a", created=days_ago(30)),
        "old_signed": repo.image("old-signed", "b", created=days_ago(30)),
        "young": repo.image("young", "c", created=days_ago(2)),
        "release": repo.image("release", "release-1", created=days_ago(90)),
    }
    return repo, d


def checks(d: dict[str, str], **verdicts: bool | None) -> dict:
    return {"reg.example.com/team/app": {d[name]: {"unsigned": SignatureCheck(signed, f"{name} checked")}
                                         for name, signed in verdicts.items()}}


def test_only_digests_past_grace_and_not_kept_are_checked():
    repo, d = three()
    policy = build_policy({"rules": [{"name": "releases", "action": "keep", "prefix": ["release-"]}, RULE]})
    wanted = unsigned_candidates([repo.snapshot()], policy, NOW)
    assert wanted == {"reg.example.com/team/app": {d["old_signed"]: ("unsigned",), d["old_unsigned"]: ("unsigned",)}}


def test_without_an_unsigned_rule_nothing_is_checked():
    repo, _d = three()
    assert unsigned_candidates([repo.snapshot()], build_policy({"older_than": "1d"}), NOW) == {}


def test_a_repository_where_everything_is_kept_asks_for_no_check():
    repo, _d = three()
    policy = build_policy({"rules": [{"name": "all", "action": "keep"}, RULE]})
    assert unsigned_candidates([repo.snapshot()], policy, NOW) == {}


def test_in_use_digests_are_not_checked_and_not_deleted():
    repo, d = three()
    snapshot = repo.snapshot()
    running = match_in_use(parse_in_use(["reg.example.com/team/app:a"]), [snapshot]).digests
    policy = build_policy({"rules": [RULE]})
    wanted = unsigned_candidates([snapshot], policy, NOW, in_use=running)
    assert d["old_unsigned"] not in wanted["reg.example.com/team/app"]
    result = plan_retention(snapshot, policy, NOW, in_use=running,
                            signatures=checks(d, old_signed=True, release=False))
    assert actions(result)[d["old_unsigned"]] == "keep"
    assert actions(result)[d["release"]] == "delete"


def test_unsigned_past_grace_goes_with_what_was_checked_and_signed_stays():
    repo, d = three()
    policy = build_policy({"rules": [{"name": "releases", "action": "keep", "prefix": ["release-"]}, RULE],
                           "allow_empty_repository": True})
    result = plan_retention(repo.snapshot(), policy, NOW, signatures=checks(d, old_unsigned=False, old_signed=True))
    assert actions(result) == {d["old_unsigned"]: "delete", d["old_signed"]: "keep", d["young"]: "keep",
                               d["release"]: "keep"}
    entry = by_digest(result)[d["old_unsigned"]]
    assert entry.to_dict()["unsigned"] == {"reason": "unsigned", "rule": "unsigned", "grace": "7d",
                                           "checked": "old_unsigned checked"}
    assert by_digest(result)[d["old_signed"]].unsigned is None
    [grace] = skipped(result, "unsigned_grace")
    assert grace.digest == d["young"] and grace.tags == ("c",)
    assert "within its grace (7d); its signatures were not checked; kept" in grace.message


def test_a_check_that_could_not_be_made_keeps_the_digest_and_says_why():
    repo, d = three()
    policy = build_policy({"rules": [RULE]})
    result = plan_retention(repo.snapshot(), policy, NOW,
                            signatures=checks(d, old_unsigned=None, old_signed=True, release=True))
    assert actions(result)[d["old_unsigned"]] == "keep"
    [item] = skipped(result, "signature_unknown")
    assert item.digest == d["old_unsigned"] and "could not be checked (old_unsigned checked)" in item.message


def test_an_unchecked_digest_is_never_condemned_by_an_unsigned_rule():
    repo, d = three()
    result = plan_retention(repo.snapshot(), build_policy({"rules": [RULE]}), NOW, signatures={})
    assert set(actions(result).values()) == {"keep"}


def test_unknown_age_is_reported_not_checked():
    repo = Repo("reg.example.com/team/app")
    nodate = repo.image("nodate", "x", created=None)
    policy = build_policy({"rules": [RULE]})
    assert unsigned_candidates([repo.snapshot()], policy, NOW) == {}
    result = plan_retention(repo.snapshot(), policy, NOW, signatures={})
    assert actions(result) == {nodate: "keep"}
    assert [s.digest for s in skipped(result, "unknown_age")] == [nodate]


def test_the_compiled_policy_shows_the_rule_as_written():
    policy = build_policy({"rules": [RULE]})
    assert policy.to_dict()["rules"] == [{"name": "unsigned", "action": "delete",
                                          "unsigned": {"verify": VERIFY, "grace": "7d"}}]


@pytest.mark.parametrize("unsigned, message", [
    ("yes", "rule 'u' (rules[0]): unsigned must be a dict"),
    ({"verify": VERIFY}, "rule 'u' (rules[0]): unsigned needs grace"),
    ({"grace": "7d"}, "rule 'u' (rules[0]): unsigned needs verify"),
    ({"verify": VERIFY, "grace": "7d", "after": "1d"}, "unsigned has unknown key(s) after"),
    ({"verify": VERIFY, "grace": "a week"}, "rule 'u' (rules[0]): unsigned.grace "),
    ({"verify": {"require": ["signature"]}, "grace": "7d"}, "rule 'u' (rules[0]): unsigned.verify needs keys"),
    ({"verify": {"keys": [KEY], "colour": 1}, "grace": "7d"}, "unsigned.verify has unknown option(s) colour"),
])
def test_misuse_is_refused_in_one_line_naming_the_rule(unsigned, message):
    with pytest.raises(InvalidInputError) as caught:
        build_policy({"rules": [{"name": "u", "action": "delete", "unsigned": unsigned}]})
    assert message in caught.value.message and "\n" not in caught.value.message


def test_unsigned_on_a_keep_rule_is_refused():
    with pytest.raises(InvalidInputError, match="belongs on a delete rule"):
        build_policy({"rules": [{"name": "u", "action": "keep", "unsigned": {"verify": VERIFY, "grace": "7d"}}]})


def test_with_untagged_it_expires_unsigned_untagged_digests_only():
    repo = Repo("reg.example.com/team/app")
    orphan_unsigned = repo.image("orphan-unsigned", created=days_ago(30))
    orphan_signed = repo.image("orphan-signed", created=days_ago(30))
    tagged = repo.image("tagged", "v1", created=days_ago(30))
    policy = build_policy({"rules": [{"name": "unsigned", "action": "delete", "untagged": True,
                                      "unsigned": {"verify": VERIFY, "grace": "7d"}}]})
    assert unsigned_candidates([repo.snapshot()], policy, NOW) == {
        "reg.example.com/team/app": {orphan_signed: ("unsigned",), orphan_unsigned: ("unsigned",)}}
    signatures = {"reg.example.com/team/app": {orphan_unsigned: {"unsigned": SignatureCheck(False, "none")},
                                               orphan_signed: {"unsigned": SignatureCheck(True, "signed")}}}
    result = plan_retention(repo.snapshot(), policy, NOW, signatures=signatures)
    assert actions(result) == {orphan_unsigned: "delete", orphan_signed: "keep", tagged: "keep"}


def test_the_grace_is_named_only_where_it_alone_spares():
    repo, d = three()
    rule = {**RULE, "newer_than": "1d"}  # the young image (2 days) fails newer_than too: not the grace's doing
    result = plan_retention(repo.snapshot(), build_policy({"rules": [rule]}), NOW, signatures={})
    assert skipped(result, "unsigned_grace") == []
