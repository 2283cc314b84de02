"""The unit tests' fake registries (pytest-httpserver) answer as registries do: with the API version header.

Every Distribution-API registry sends ``Docker-Distribution-API-Version: registry/2.0`` on every answer,
and the client reads a miss (404, 405, 501) without it as a sign that the host may not be a registry at
all (it then asks ``GET /v2/`` once). The handlers of these tests script a registry's answers, so they
get the header too; a test about hosts that send no such header uses the ``bare_answers`` fixture.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")


@pytest.fixture
def bare_answers() -> None:
    """Ask for it to keep the ``httpserver`` answers as the test scripts them (no API version header)."""


@pytest.fixture(autouse=True)
def registry_answers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Add the API version header to every answer of the ``httpserver`` fixture, when the test uses it."""
    if "httpserver" not in request.fixturenames or "bare_answers" in request.fixturenames:
        yield
        return
    server: Any = request.getfixturevalue("httpserver")
    original = server.dispatch

    def dispatch(incoming: Any) -> Any:
        response = original(incoming)
        if API_VERSION[0] not in response.headers:
            response.headers[API_VERSION[0]] = API_VERSION[1]
        return response

    server.dispatch = dispatch
    try:
        yield
    finally:
        del server.dispatch
