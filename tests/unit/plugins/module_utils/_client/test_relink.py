"""The one relink retry (_client/relink.py): what it recognises, how often and how long it waits, and that it says so."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._client.relink import (
    RELINK_PAUSES,
    is_relink_refusal,
    retry_relink,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    TransportError,
)


def refused(code: str = "DIGEST_INVALID", status: int = 400) -> RegistryError:
    return DigestMismatchError(f"HTTP {status} ({code})", status=status, code=code)


@pytest.mark.parametrize("error, expected", [
    (refused("DIGEST_INVALID"), True),
    (refused("MANIFEST_BLOB_UNKNOWN"), True),
    (refused("BLOB_UNKNOWN"), True),
    (refused("DIGEST_INVALID", status=500), False),  # a server failure is the transport's retry, not this one
    (refused("MANIFEST_INVALID"), False),
    (NotFoundError("gone", status=404, code="MANIFEST_UNKNOWN"), False),
    (TransportError("no answer"), False),
])
def test_only_distributions_mid_rewrite_refusals_count(error: RegistryError, expected: bool) -> None:
    assert is_relink_refusal(error) is expected


class Script:
    """A send() that fails with the scripted errors, then answers ``done``; the sleeps and lines it saw."""

    def __init__(self, *errors: RegistryError) -> None:
        self.errors = list(errors)
        self.sent = 0
        self.slept: list[float] = []
        self.said: list[str] = []

    def send(self) -> str:
        self.sent += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"

    def run(self) -> str:
        return retry_relink(self.send, what="push manifest team/app:v1 on r.example", sleep=self.slept.append,
                            announce=self.said.append)


def test_a_refusal_that_ends_is_sent_again_after_growing_pauses_and_announced_once() -> None:
    script = Script(refused(), refused("MANIFEST_BLOB_UNKNOWN"))
    assert script.run() == "done"
    assert script.sent == 3 and script.slept == list(RELINK_PAUSES[:2])
    (line,) = script.said
    assert line.startswith("push manifest team/app:v1 on r.example: the registry refused it (HTTP 400 DIGEST_INVALID)")
    assert f"at most {sum(RELINK_PAUSES):.2f} s" in line


def test_no_refusal_sends_once_and_says_nothing() -> None:
    script = Script()
    assert script.run() == "done"
    assert (script.sent, script.slept, script.said) == (1, [], [])


def test_a_refusal_that_outlasts_every_pause_is_real_and_raised() -> None:
    last = refused()
    script = Script(*[refused() for _pause in RELINK_PAUSES], last)
    with pytest.raises(DigestMismatchError) as raised:
        script.run()
    assert raised.value is last
    assert script.sent == len(RELINK_PAUSES) + 1 and script.slept == list(RELINK_PAUSES)


def test_any_other_error_is_raised_at_once_without_a_wait() -> None:
    script = Script(NotFoundError("gone", status=404, code="MANIFEST_UNKNOWN"))
    with pytest.raises(NotFoundError):
        script.run()
    assert (script.sent, script.slept, script.said) == (1, [], [])


def test_an_announced_wait_is_a_registry_warning_once() -> None:
    registry = Registry("r.example")
    registry.announce("waited")
    registry.announce("waited")
    assert registry.warnings == ["waited"]
