"""The one relink retry (_client/relink.py): what it recognises, how often and how long it waits, and that it says so."""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry, Repository
from ansible_collections.ocireg.registry.plugins.module_utils._client.relink import (
    RELINK_PAUSES,
    is_relink_refusal,
    retry_relink,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import unique_empty_artifact
from ansible_collections.ocireg.registry.plugins.module_utils._model.mediatypes import OCI_MANIFEST
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


# -- through Repository: a fake, because Distribution's race cannot be produced on demand ------------------


def refusal(code: str) -> Response:
    return Response(json.dumps({"errors": [{"code": code, "message": "mid-rewrite"}]}), 400,
                    content_type="application/json")


@pytest.fixture
def fake(httpserver: HTTPServer) -> tuple[Repository, list[float], list[str]]:
    """A repository on a fake registry whose first manifest PUT and DELETE are refused mid-rewrite."""
    sent: list[str] = []
    answers = {"PUT": [refusal("MANIFEST_BLOB_UNKNOWN"), Response("", 201)],
               "DELETE": [refusal("DIGEST_INVALID"), refusal("DIGEST_INVALID"), Response("", 202)]}

    def handle(request: Any) -> Response:
        sent.append(request.method)
        if request.method == "PUT":
            answer = answers["PUT"].pop(0)
            if answer.status_code == 201:
                answer.headers["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(request.data).hexdigest()
            return answer
        return answers[request.method].pop(0)

    httpserver.expect_request(re.compile("^/v2/team/app/manifests/.*")).respond_with_handler(handle)
    slept: list[float] = []
    registry = Registry(f"{httpserver.host}:{httpserver.port}", TransportOptions(plain_http=True, sleep=slept.append))
    return registry.repository("team/app"), slept, sent


def test_a_manifest_put_refused_mid_rewrite_is_sent_again_and_the_wait_announced(fake) -> None:
    repo, slept, sent = fake
    raw = unique_empty_artifact("application/vnd.example.v1", {"example.id": "put"})
    repo.push_manifest("v1", raw, OCI_MANIFEST, update_referrers=False)
    assert (sent, slept) == (["PUT", "PUT"], [RELINK_PAUSES[0]])
    (line,) = repo.registry.warnings
    assert "push manifest" in line and "HTTP 400 MANIFEST_BLOB_UNKNOWN" in line


def test_a_delete_is_sent_again_only_when_the_caller_says_the_digest_is_its_own(fake) -> None:
    repo, slept, sent = fake
    digest = "sha256:" + "a" * 64
    with pytest.raises(DigestMismatchError):
        repo.delete_manifest(digest, missing_ok=True)  # a user's manifest: the caller reads, never resends
    assert (sent, slept, repo.registry.warnings) == (["DELETE"], [], [])
    # A placeholder or lease: no other tag can hold it, so a second DELETE can remove nothing else.
    assert repo.delete_manifest(digest, missing_ok=True, relink_retry=True) is True
    assert (sent, slept) == (["DELETE", "DELETE", "DELETE"], [RELINK_PAUSES[0]])
    (line,) = repo.registry.warnings
    assert "delete manifest" in line and "HTTP 400 DIGEST_INVALID" in line
