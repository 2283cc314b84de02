"""The auth step alone: one 401 answered, one 403 token refresh, nothing else.

The authenticator is a recording fake (the step only needs its three calls);
the real Authenticator against real challenges is covered in auth/test_token.py,
test_core.py and tests/integration/test_auth_token.py.
"""
from __future__ import annotations

from collections.abc import Sequence

import pytest
import requests
from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.challenge import (
    Challenge,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.auth_step import (
    FRESH_CREDENTIALS,
    FRESH_TOKEN,
    AuthStep,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
)

BEARER = 'Bearer realm="https://auth.example/token",service="r.example",scope="repository:a:pull"'


class Recorder:
    """An authenticator that answers with ``answer`` and records what it was asked."""

    def __init__(self, answer: str | None = "Bearer fresh") -> None:
        self.answer = answer
        self.calls: list[tuple[str, object]] = []

    def header_for(self, host: str, scopes: Sequence[str]) -> str | None:
        self.calls.append(("header_for", tuple(scopes)))
        return "Bearer cached"

    def authorize(self, host: str, challenges: list[Challenge], scopes: Sequence[str]) -> str | None:
        self.calls.append(("authorize", [c.scheme for c in challenges]))
        return self.answer

    def invalidate(self, host: str, scopes: Sequence[str]) -> None:
        self.calls.append(("invalidate", tuple(scopes)))

    def issued_tokens(self) -> list[str]:
        return []


class Answer(requests.Response):
    def __init__(self, status: int, challenge: str | None = None) -> None:
        super().__init__()
        self.status_code = status
        self.closed = False
        if challenge is not None:
            self.headers["WWW-Authenticate"] = challenge

    def close(self) -> None:
        self.closed = True


def step(authenticator: Recorder | None) -> AuthStep:
    return AuthStep("r.example", authenticator, ["repository:a:pull"])


def test_a_401_challenge_is_answered_once() -> None:
    recorder = Recorder()
    auth = step(recorder)
    first = Answer(401, BEARER)
    assert auth.replay_reason(first, None, from_registry=True) == FRESH_CREDENTIALS
    assert first.closed
    assert recorder.calls == [("authorize", ["bearer"])]
    again = Answer(401, BEARER)
    assert auth.replay_reason(again, "Bearer fresh", from_registry=True) is None
    assert not again.closed  # left for the error mapping


def test_a_challenge_from_a_redirect_target_is_not_answered() -> None:
    recorder = Recorder()
    assert step(recorder).replay_reason(Answer(401, BEARER), None, from_registry=False) is None
    assert recorder.calls == []


def test_nothing_to_send_means_no_replay() -> None:
    assert step(Recorder(answer=None)).replay_reason(Answer(401, 'Basic realm="r"'), None, True) is None


def test_an_unreadable_challenge_is_one_clear_error() -> None:
    with pytest.raises(AuthenticationError, match="challenge that cannot be read"):
        step(Recorder()).replay_reason(Answer(401, 'Bearer realm="unterminated'), None, True)


def test_a_403_to_a_bearer_token_refreshes_once_and_allows_one_more_challenge() -> None:
    recorder = Recorder()
    auth = step(recorder)
    assert auth.replay_reason(Answer(401, BEARER), None, True) == FRESH_CREDENTIALS
    refused = Answer(403)
    assert auth.replay_reason(refused, "Bearer old", True) == FRESH_TOKEN
    assert refused.closed
    assert recorder.calls[-1] == ("invalidate", ("repository:a:pull",))
    # The fresh token request draws a new challenge, which is answered again ...
    assert auth.replay_reason(Answer(401, BEARER), None, True) == FRESH_CREDENTIALS
    # ... but a second 403 is final.
    assert auth.replay_reason(Answer(403), "Bearer fresh", True) is None


@pytest.mark.parametrize("sent", [None, "", "Basic dXNlcjpwYXNz"])
def test_a_403_without_a_bearer_token_is_final(sent: str | None) -> None:
    recorder = Recorder()
    assert step(recorder).replay_reason(Answer(403), sent, True) is None
    assert recorder.calls == []


def test_without_an_authenticator_nothing_is_answered() -> None:
    auth = step(None)
    assert auth.header() is None
    assert auth.replay_reason(Answer(401, BEARER), None, True) is None
    assert auth.replay_reason(Answer(403), "Bearer x", True) is None


@pytest.mark.parametrize("status", [200, 404, 429, 500])
def test_other_statuses_are_not_the_steps(status: int) -> None:
    recorder = Recorder()
    assert step(recorder).replay_reason(Answer(status, BEARER), "Bearer x", True) is None
    assert recorder.calls == []


# -- a 401 that stands for a missing repository (Docker Hub, GHCR: personality missing_repo_401) -------
INSUFFICIENT = BEARER + ',error="insufficient_scope"'


class Granting(Recorder):
    """A recorder whose token was (or was not) granted the scopes, as its JWT access claim says."""

    def __init__(self, granted: bool | None) -> None:
        super().__init__()
        self.granted = granted

    def grants(self, host: str, scopes: Sequence[str]) -> bool | None:
        return self.granted


def answered(authenticator: Recorder) -> AuthStep:
    auth = step(authenticator)
    assert auth.replay_reason(Answer(401, BEARER), None, from_registry=True) == FRESH_CREDENTIALS
    return auth


@pytest.mark.parametrize("granted", [True, None])
@pytest.mark.parametrize("challenge", [INSUFFICIENT, BEARER])
def test_a_read_refused_after_a_granted_token_is_a_missing_repository(granted: bool | None, challenge: str) -> None:
    auth = answered(Granting(granted))
    assert auth.hides_missing_repository("GET", Answer(401, challenge))
    assert auth.hides_missing_repository("HEAD", Answer(401, challenge))


def test_a_token_without_the_grant_is_a_permission_problem() -> None:
    assert not answered(Granting(False)).hides_missing_repository("GET", Answer(401, INSUFFICIENT))


def test_an_invalid_token_is_not_a_missing_repository() -> None:
    auth = answered(Granting(True))
    assert not auth.hides_missing_repository("GET", Answer(401, BEARER + ',error="invalid_token"'))


def test_writes_and_unanswered_challenges_are_not_missing_repositories() -> None:
    auth = answered(Granting(True))
    assert not auth.hides_missing_repository("PUT", Answer(401, INSUFFICIENT))
    assert not auth.hides_missing_repository("GET", Answer(403, INSUFFICIENT))
    fresh = step(Granting(True))  # no challenge answered during this request
    assert not fresh.hides_missing_repository("GET", Answer(401, INSUFFICIENT))
    catalog = AuthStep("r.example", Granting(True), ["registry:catalog:*"])
    catalog.replay_reason(Answer(401, BEARER), None, from_registry=True)
    assert not catalog.hides_missing_repository("GET", Answer(401, INSUFFICIENT))
