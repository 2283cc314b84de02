"""Transport answering Basic challenges, against a real htpasswd Distribution 2.8.

These ran against a fake once; Distribution with an htpasswd file sends real
``Basic`` challenges and refuses a wrong password, so they run against it and
count what reached it in its access log.
"""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.token import Authenticator
from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import Credentials, basic_token
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import Transport, TransportOptions
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import AuthenticationError
from tests.rig.flavours import RigRegistry


def basic_transport(registry: RigRegistry, credentials: Credentials | None) -> Transport:
    """A plain-HTTP transport to ``registry`` that answers challenges with ``credentials`` and never sleeps."""
    options = TransportOptions(plain_http=True, sleep=lambda _s: None)
    transport = Transport(registry.host, options)
    transport.authenticator = Authenticator(credentials, transport.session, timeout=options.timeout)
    return transport


def statuses(registry: RigRegistry, mark: int) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in registry.requests_since(mark)]


def test_basic_challenge_is_answered_once_then_sent_upfront(basic_registry: RigRegistry) -> None:
    transport = basic_transport(basic_registry, Credentials(basic_registry.username, basic_registry.password))
    mark = basic_registry.mark()
    transport.request("GET", "/v2/")
    assert statuses(basic_registry, mark) == [("GET", "/v2/", 401), ("GET", "/v2/", 200)]
    mark = basic_registry.mark()
    transport.request("GET", "/v2/_catalog")
    assert statuses(basic_registry, mark) == [("GET", "/v2/_catalog", 200)]  # no second 401


def test_wrong_password_is_authentication_error_without_secrets(basic_registry: RigRegistry) -> None:
    transport = basic_transport(basic_registry, Credentials(basic_registry.username, "wrong-password"))
    mark = basic_registry.mark()
    with pytest.raises(AuthenticationError) as caught:
        transport.request("GET", "/v2/team/app/tags/list")
    # The challenge is answered once, not in a loop.
    assert [s for _m, _p, s in statuses(basic_registry, mark)] == [401, 401]
    message = str(caught.value)
    assert "wrong-password" not in message and basic_token(basic_registry.username, "wrong-password") not in message
    assert "check username/password" in message and basic_registry.host in message


def test_401_without_credentials_is_authentication_error(basic_registry: RigRegistry) -> None:
    mark = basic_registry.mark()
    with pytest.raises(AuthenticationError):
        basic_transport(basic_registry, None).request("GET", "/v2/")
    assert statuses(basic_registry, mark) == [("GET", "/v2/", 401)]
