"""Honest messages from the client: plain_http against a TLS port, and an anonymous client
on a registry that needs a login, each say what is wrong and which option fixes it (real Distribution
2.8 registries from the rig: one serving TLS, one behind the rig's token server). The option is named
by the glue from the error's hint (``advised``), as a task reports it."""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._glue.advice import (
    advised,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    TransportOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    AuthorizationError,
    TransportError,
)

from tests.rig.flavours import RigRegistry


def client(registry: RigRegistry, **options: object) -> Registry:
    return Registry(registry.host, TransportOptions(sleep=lambda _s: None, **options))


def test_plain_http_against_a_tls_port_says_so(tls_registry: RigRegistry) -> None:
    registry = client(tls_registry, plain_http=True)
    for call in (registry.ping, registry.repository("team/app").tags, lambda: registry.repository("team/app").resolve("x")):
        with pytest.raises(TransportError) as caught:
            call()
        assert f"{tls_registry.host} serves HTTPS on this port, but plain_http is true" in advised(caught.value)


def test_an_anonymous_client_on_a_registry_needing_a_login_is_told_to_log_in(token_registry: RigRegistry) -> None:
    repository = client(token_registry).repository("team/app")
    for call in (repository.tags, lambda: repository.resolve("x")):
        with pytest.raises((AuthenticationError, AuthorizationError)) as caught:
            call()
        message = str(caught.value)
        assert f"the registry needs credentials and none were given for {token_registry.host}" in message
        assert "check the account's permissions" not in message  # there is no account
