"""A repository that could not be pruned keeps its error as data; the caller words it where it is shown."""
from __future__ import annotations

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import (
    failed_repositories,
    worded,
)

TLS = TransportError("TLS certificate verify failed for r.example (list tags of a)", host="r.example",
                     operation="list tags of a", hint="tls_untrusted", advice="trust the CA bundle")
FAILED = [{"repository": "r.example/a", "error": TLS}]


def test_the_error_is_told_by_the_callers_words() -> None:
    assert worded(FAILED) == [{"repository": "r.example/a", "error": str(TLS)}]
    assert worded(FAILED, lambda err: f"<{err.hint}>") == [{"repository": "r.example/a", "error": "<tls_untrusted>"}]
    assert worded([{"repository": "b", "error": "already text"}]) == [{"repository": "b", "error": "already text"}]


def test_the_failure_lists_each_repository_in_those_words() -> None:
    error = failed_repositories(FAILED, "fail", word=lambda err: f"<{err.hint}>")
    assert error is not None and "r.example/a: <tls_untrusted>. Set failed_repository: warn" in str(error)
    assert failed_repositories(FAILED, "warn") is None


def test_when_no_repository_could_be_pruned_the_causes_are_the_message() -> None:
    # A prune of one unreachable repository has no "others" that were applied, and making its only
    # failure a warning would hide it: the message is the cause alone.
    def word(err):
        return f"<{err.hint}>"

    assert str(failed_repositories(FAILED, "fail", word=word, of=1)) == "r.example/a: <tls_untrusted>"
    both = FAILED + [{"repository": "r.example/b", "error": TLS}]
    assert str(failed_repositories(both, "fail", word=word, of=2)) == \
        "none of the 2 repositories could be pruned: r.example/a: <tls_untrusted>; r.example/b: <tls_untrusted>"
    assert "the others were planned and applied" in str(failed_repositories(FAILED, "fail", word=word, of=3))
