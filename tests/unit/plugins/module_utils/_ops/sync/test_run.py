"""failure_message: what a failed sync says in msg, from the result data alone (pure)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
    _removal_phases,
    failure_message,
)

DENIED = "push {repo}:{tag} on 127.0.0.1:5009 failed: HTTP 401: the registry needs credentials"


def repository(dest: str, failed: list[str], line: str, **extra: Any) -> dict[str, Any]:
    repo = dest.split("/", 1)[1]
    tags = {tag: {"status": "failed", "error": {"message": DENIED.format(repo=repo, tag=tag)}} for tag in failed}
    return {"dest": dest, "line": line, "error": None, "failed": failed, "drift": [], "not_attempted": [],
            "tags": tags, **extra}


def result(*repositories: dict[str, Any], stopped: str | None = None, refused: str | None = None) -> dict:
    return {"repositories": list(repositories), "stopped": stopped, "prune": {"refused": refused}}


def test_one_repository_names_its_tags_and_the_cause_once() -> None:
    data = result(repository("h/hub/app", ["1.0", "1.1", "1.2", "2.0"], "a -> h/hub/app: 4 failed"))
    assert failure_message(data) == ("a -> h/hub/app: 4 failed - 1.0, 1.1, 1.2 and 1 more: push hub/app:<tag> on "
                                     "127.0.0.1:5009 failed: HTTP 401: the registry needs credentials")


def test_several_repositories_one_cause_is_told_once() -> None:
    ok = {"dest": "h/ok", "line": "ok", "error": None, "failed": [], "drift": [], "not_attempted": [], "tags": {}}
    failing = [repository(f"h/team/r{n}", ["1.0"], f"line {n}") for n in range(5)]
    message = failure_message(result(ok, *failing, stopped="stopped: h reports 0 left"))
    assert message == ("line 0; line 1; line 2; and 2 more repositories - h/team/r0:1.0, h/team/r1:1.0, "
                       "h/team/r2:1.0 and 2 more: push <repository>:<tag> on 127.0.0.1:5009 failed: HTTP 401: "
                       "the registry needs credentials; stopped: h reports 0 left")


def test_several_repositories_different_causes_are_counted() -> None:
    first = repository("h/a", ["1.0"], "line a")
    second = {**repository("h/b", ["2.0"], "line b"),
              "tags": {"2.0": {"status": "failed", "error": {"message": "b:2.0: manifest invalid"}}}}
    message = failure_message(result(first, second))
    assert message.endswith("h/a:1.0: push <repository>:1.0 on 127.0.0.1:5009 failed: HTTP 401: the registry "
                            "needs credentials; h/b:2.0: <repository>:2.0: manifest invalid"), message


def test_drift_and_a_refused_prune_are_told() -> None:
    drifted = repository("h/x/app", [], "x -> h/x/app: 1 drifted (no_clobber)", drift=["1.0"],
                         tags={"1.0": {"status": "drift", "reason": "h/x/app:1.0 points at sha256:a; no_clobber"}})
    message = failure_message(result(drifted, refused="prune_missing would remove 9 tags"))
    # One drifted tag is named in its reason, not masked as <tag>.
    assert message == ("x -> h/x/app: 1 drifted (no_clobber) - 1.0: h/x/app:1.0 points at sha256:a; no_clobber; "
                       "prune_missing would remove 9 tags")


def tags_result(failed: dict[str, str], copied: list[str], not_attempted: list[str], **extra: Any) -> dict:
    """The run-wide keys a ``tags`` mirror's message is made of."""
    return {"failed_tags": {name: {"message": cause} for name, cause in failed.items()},
            "tag_results": {name: {} for name in copied}, "not_attempted": not_attempted,
            "repositories": extra.get("repositories", []), "stopped": None, "prune": {"refused": None}}


def test_the_tags_spelling_counts_tags_and_names_each_cause_once() -> None:
    failed = {tag: DENIED.format(repo="m/app", tag=tag) for tag in ("1.0", "1.1", "1.2", "2.0")}
    failed["3.0"] = "fetch blob from h: content expected to have digest sha256:a hashed to sha256:b"
    message = failure_message(tags_result(failed, ["0.9"], ["4.0", "4.1", "4.2", "4.3", "4.4"]), per_tag=True)
    assert message == ("5 of 11 tags failed to mirror: 1.0, 1.1, 1.2 and 1 more: push m/app:<tag> on "
                       "127.0.0.1:5009 failed: HTTP 401: the registry needs credentials; 3.0: fetch blob from h: "
                       "content expected to have digest sha256:a hashed to sha256:b; "
                       "5 not attempted: 4.0, 4.1, 4.2 and 2 more")


def test_the_tags_spelling_tells_a_repository_that_could_not_be_read() -> None:
    unreadable = {"src": "oci:/bundle (team/app)", "error": {"message": "index.json is not JSON"}}
    message = failure_message(tags_result({}, [], [], repositories=[unreadable]), per_tag=True)
    assert message == "oci:/bundle (team/app): index.json is not JSON"


def test_the_tags_spelling_counts_every_selected_tag_and_says_one_tag() -> None:
    # keep_going off at concurrency 1: a1 copied, a2 present, b1 failed, c1 not attempted: 4 selected.
    message = failure_message(tags_result({"b1": "push m/app:b1 failed"}, ["a1", "a2"], ["c1"]), per_tag=True)
    assert message == "1 of 4 tags failed to mirror: b1: push m/app:b1 failed; 1 not attempted: c1"
    message = failure_message(tags_result({"b1": "push m/app:b1 failed"}, [], []), per_tag=True)
    assert message == "1 of 1 tag failed to mirror: b1: push m/app:b1 failed"


def test_removals_run_one_per_registry_then_one_per_repository_then_the_rest() -> None:
    # What a registry client and a repository handle learn from their first removal (DELETE by tag
    # refused, the placeholder's blob present) is learnt once, not by every removal sent at once.
    hub, quay = SimpleNamespace(), SimpleNamespace()
    states = {dest: SimpleNamespace(dest=SimpleNamespace(registry=registry))
              for dest, registry in (("hub/a", hub), ("hub/b", hub), ("quay/c", quay))}
    jobs = [("hub/a", "1"), ("hub/a", "2"), ("hub/b", "3"), ("quay/c", "4"), ("quay/c", "5"), ("hub/b", "6")]
    assert _removal_phases(jobs, states) == [[("hub/a", "1"), ("quay/c", "4")], [("hub/b", "3")],
                                             [("hub/a", "2"), ("quay/c", "5"), ("hub/b", "6")]]
    assert _removal_phases([("hub/a", "1")], states) == [[("hub/a", "1")]]
    assert _removal_phases([], states) == []
