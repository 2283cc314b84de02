"""select_repositories: literal names need no catalog; a refused catalog is one line saying what to set.

A stub registry stands in for the catalog: Distribution 2.8 serves its catalog to any token that
carries registry:catalog:*, so the refusal is proven end to end through the acr/harbor/dockerhub
personalities (tests/integration/test_vendor_registries.py, step prune_catalog).
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    AuthorizationError,
    NotFoundError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import (
    select_repositories,
)


class StubRegistry:
    host = "registry.example"

    def __init__(self, names: list[str] | None = None, error: Exception | None = None) -> None:
        self.names = names or []
        self.error = error
        self.catalog_calls = 0

    def catalog(self) -> Iterator[str]:
        self.catalog_calls += 1
        if self.error is not None:
            raise self.error
        yield from self.names


def test_literal_names_never_read_the_catalog() -> None:
    registry = StubRegistry(error=AuthenticationError("would fail"))
    assert select_repositories(registry, ["team/b", "team/a"]) == ["team/a", "team/b"]  # type: ignore[arg-type]
    assert registry.catalog_calls == 0


def test_patterns_match_the_catalog() -> None:
    registry = StubRegistry(["team/a", "team/b", "other/c"])
    assert select_repositories(registry, ["team/*"], ["team/b"]) == ["team/a"]  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [
    AuthenticationError("list repositories (catalog) failed: HTTP 401: authentication failed", status=401),
    AuthorizationError("list repositories (catalog) failed: HTTP 403: access denied", status=403),
    NotFoundError("list repositories (catalog) failed: HTTP 404: not found", status=404),
])
def test_a_refused_catalog_says_to_list_repositories_by_name(error: Exception) -> None:
    with pytest.raises(type(error)) as caught:
        select_repositories(StubRegistry(error=error), ["team/*", "exact/name"])  # type: ignore[arg-type]
    message = caught.value.message  # type: ignore[attr-defined]
    assert message.startswith("repositories team/* are patterns")
    assert "registry.example refused it: " + error.message in message  # type: ignore[attr-defined]
    assert "list the repositories by name in repositories (no *, ? or [)" in message
    assert caught.value.status == error.status  # type: ignore[attr-defined]


def test_a_broken_connection_is_not_called_a_refused_catalog() -> None:
    error = TransportError("list repositories (catalog): connection refused")
    with pytest.raises(TransportError) as caught:
        select_repositories(StubRegistry(error=error), ["team/*"])  # type: ignore[arg-type]
    assert caught.value.message == error.message
