"""summarize_failures: each cause once, the first few names, then counts."""
from __future__ import annotations

from ansible_collections.ocireg.registry.plugins.module_utils._model.failures import (
    summarize_failures,
)


def test_one_cause_is_told_once_with_the_first_names() -> None:
    failures = [(f"1.{n}", f"resolve app:1.{n} on 127.0.0.1:5001 failed: HTTP 401: give credentials", f"1.{n}")
                for n in range(5)]
    assert summarize_failures(failures) == \
        "1.0, 1.1, 1.2 and 2 more: resolve app:<tag> on 127.0.0.1:5001 failed: HTTP 401: give credentials"


def test_a_tag_is_masked_only_as_a_whole_word() -> None:
    failures = [("5001", "push app:5001 to 127.0.0.1:50011 failed", "5001"), ("1", "app:1.1 and app:1", "1")]
    assert summarize_failures(failures) == \
        "5001: push app:5001 to 127.0.0.1:50011 failed; 1: app:1.1 and app:1"


def test_a_cause_that_hit_one_name_keeps_its_tag() -> None:
    failures = [("latest", "h/app:latest points at sha256:a, the source at sha256:b", "latest"),
                ("1.0", "push app:1.0 failed", "1.0"), ("1.1", "push app:1.1 failed", "1.1")]
    assert summarize_failures(failures) == ("latest: h/app:latest points at sha256:a, the source at sha256:b; "
                                            "1.0, 1.1: push app:<tag> failed")


def test_causes_in_order_of_first_appearance_and_the_rest_counted() -> None:
    failures = [(name, cause, None) for name, cause in
                [("a", "x"), ("b", "y"), ("c", "x"), ("d", "z"), ("e", "w"), ("f", "v"), ("g", "w")]]
    assert summarize_failures(failures) == "a, c: x; b: y; d: z; and 3 more failed for other reasons"
    assert summarize_failures(failures, causes=1, names=1) == "a and 1 more: x; and 5 more failed for other reasons"


def test_nothing_failed_says_nothing() -> None:
    assert summarize_failures([]) == ""
