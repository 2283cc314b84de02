"""Fixtures that start real registries (see tests/rig)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.rig.registry_server import RegistryServer


@pytest.fixture
def plain_registry() -> Iterator[RegistryServer]:
    """An anonymous plain-HTTP Distribution registry on 127.0.0.1, deletes enabled."""
    with RegistryServer() as server:
        yield server
