# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The auth step: answer a 401 challenge once, refresh a refused bearer token once.

One :class:`AuthStep` lives for one request (all its sends). After each
answer the transport asks :meth:`AuthStep.replay_reason`; a reason means
"send the request again, now with fresh credentials", None means the answer
is not this step's to handle. Each rule fires at most once per request, so a
registry that keeps refusing ends in the typed error, never in a loop:

* a 401 from the registry's own origin carrying a challenge the
  authenticator can answer -> authorize, replay once;
* a 403 to a request that carried a bearer token -> the token may have lost
  its grants (revoked, narrowed scope): invalidate it, replay once (and allow
  one more challenge, which the fresh token request will draw).

After the replays, :meth:`AuthStep.hides_missing_repository` tells the
transport whether a final 401 to a read means "no such repository": Docker Hub
and GHCR answer 401 for a repository that does not exist even with a token
the token service granted for it (binderhub #1664); docker says "repository
does not exist or may require 'docker login'" and containerd reports not found.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.body import discard
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    RegistryError,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from requests import Response

    from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.challenge import (
        Challenge,
    )


#: What :meth:`AuthStep.replay_reason` returns, to finish "... must be sent again with <reason>".
FRESH_CREDENTIALS = "fresh credentials"
FRESH_TOKEN = "a fresh token"


def parse_www_authenticate(header: str) -> list[Challenge]:
    """:func:`.auth.challenge.parse_www_authenticate`, imported on the first 401: a read of an open
    registry never needs the challenge parser (under Ansible each file imported is compiled on every run)."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.ocireg.registry.plugins.module_utils._client.auth import challenge
    return challenge.parse_www_authenticate(header)


class Authorizer(Protocol):
    """What the transport needs from an authenticator (:class:`~.auth.token.Authenticator` is one).

    Static typing only: nothing checks this at run time.
    """

    def header_for(self, host: str, scopes: Sequence[str]) -> str | None:
        """The cached ``Authorization`` value for ``host`` and ``scopes``, or None (no network)."""

    def authorize(self, host: str, challenges: list[Challenge], scopes: Sequence[str]) -> str | None:
        """Answer a 401's challenges: an ``Authorization`` value, or None when there is nothing to send."""

    def invalidate(self, host: str, scopes: Sequence[str]) -> None:
        """Forget the cached token :meth:`header_for` would hand out for ``scopes``."""

    # Optional (read with getattr): ``grants(host, scopes) -> bool | None``, whether the token
    # header_for hands out was granted ``scopes`` (None: cannot tell, e.g. an opaque token).

    def issued_tokens(self) -> list[str]:
        """Every token obtained so far, for scrubbing output (not used by the transport itself)."""


def read_challenges(host: str, response: Response) -> list[Challenge]:
    """The parsed ``WWW-Authenticate`` challenges of a 401; one clear error when they cannot be read."""
    try:
        return parse_www_authenticate(response.headers.get("WWW-Authenticate", ""))
    except RegistryError as exc:
        response.close()
        raise AuthenticationError(f"{host} answered 401 with a challenge that cannot be read: {exc}",
                                  status=401) from None


class AuthStep:
    """The auth state of one request to ``host`` needing ``scopes`` (see the module docstring)."""

    def __init__(self, host: str, authenticator: Authorizer | None, scopes: Sequence[str]) -> None:
        self.host = host
        self.authenticator = authenticator
        self.scopes = tuple(scopes)
        self.answered_challenge = False
        self.refreshed_token = False
        self.authorized = False

    def header(self) -> str | None:
        """The ``Authorization`` value to send to the registry's origin now, if any."""
        if self.authenticator is None:
            return None
        return self.authenticator.header_for(self.host, self.scopes)

    def replay_reason(self, response: Response, sent_auth: str | None, from_registry: bool) -> str | None:
        """Why ``response`` calls for sending the request again, or None.

        ``sent_auth`` is the ``Authorization`` value the answered send
        carried; ``from_registry`` whether the answer came from the
        registry's own origin (a redirect target's challenge is never
        answered: that would mix its auth into the registry's). A response
        this returns a reason for is closed.
        """
        authenticator = self.authenticator
        if authenticator is None:
            return None
        status = response.status_code
        if status == 401 and not self.answered_challenge and from_registry:
            challenges = read_challenges(self.host, response)
            if challenges:
                self.answered_challenge = True
                if authenticator.authorize(self.host, challenges, self.scopes) is not None:
                    self.authorized = True
                    discard(response)
                    return FRESH_CREDENTIALS
        if (status == 403 and sent_auth and not self.refreshed_token
                and sent_auth.lower().startswith("bearer ")):
            self.refreshed_token = True
            self.answered_challenge = False
            authenticator.invalidate(self.host, self.scopes)
            discard(response)
            return FRESH_TOKEN
        return None

    def hides_missing_repository(self, method: str, response: Response) -> bool:
        """Whether a final 401 to a read is a registry's way of saying the repository does not exist.

        True when all of: the request is a read (GET/HEAD) that needs
        repository scopes, this step answered a bearer challenge with a fresh
        token during the request, the registry still answers 401 with no
        ``error`` or ``error="insufficient_scope"`` (not ``invalid_token``: a
        bad token is an authentication failure), and the token was granted the
        scopes asked (its JWT ``access`` claim), or it is opaque so that cannot
        be read. A token whose claim lacks the grant is a permission problem,
        not a missing repository, and stays one.
        """
        if response.status_code != 401 or method not in ("GET", "HEAD") or not self.authorized:
            return False
        if not self.scopes or not all(s.startswith("repository:") for s in self.scopes):
            return False
        try:
            challenges = parse_www_authenticate(response.headers.get("WWW-Authenticate", ""))
        except RegistryError:
            return False
        bearer = [c for c in challenges if c.scheme == "bearer"]
        if not bearer or any(c.error not in (None, "", "insufficient_scope") for c in bearer):
            return False
        grants = getattr(self.authenticator, "grants", None)
        granted = grants(self.host, self.scopes) if grants is not None else None
        return granted is not False
