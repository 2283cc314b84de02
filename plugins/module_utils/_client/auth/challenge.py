# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""WWW-Authenticate challenges and scopes (RFC 7235 / distribution token spec): pure parsing.

Also where a token realm may live relative to its registry (:func:`check_realm`). Building a scope
(:func:`scope_for`) lives in :mod:`.scopes`, which every request needs and this parser only a 401.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    is_loopback,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.scopes import (
    REGISTRY_CATALOG_SCOPE,
    scope_for,
)

__all__ = ["REGISTRY_CATALOG_SCOPE", "Challenge", "check_realm", "clean_scopes", "parse_www_authenticate", "scope_for",
           "scopes_cover", "split_host_port"]


# RFC 7230 tchar, and RFC 7235 token68.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


# Real registries sometimes send unquoted values that are not RFC tokens
# (realm=https://..., scope=repository:a:pull): accept any run up to a delimiter.
_BARE_VALUE_RE = re.compile(r'[^\s,"]+')


_OWS = " \t"


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header.

    ``scheme`` is lower-cased (``bearer``, ``basic``); ``params`` has
    lower-cased names and verbatim values; ``token68`` holds the bare
    token68 form some schemes use instead of params.
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def realm(self) -> str | None:
        """The ``realm`` param, if any."""
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        """The ``service`` param (the token's audience), if any."""
        return self.params.get("service")

    @property
    def scopes(self) -> list[str]:
        """The space-separated ``scope`` param as a list."""
        return self.params.get("scope", "").split()

    @property
    def error(self) -> str | None:
        """RFC 6750 ``error`` param, e.g. ``insufficient_scope`` or ``invalid_token``."""
        return self.params.get("error")


class _Parser:
    """A small RFC 7235 ``1#challenge`` parser over one header value."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> InvalidInputError:
        snippet = self.text[max(0, self.pos - 20): self.pos + 20]
        return InvalidInputError(
            f"malformed WWW-Authenticate header: {what} at character {self.pos} (near {snippet!r}); "
            "the registry sent a challenge that does not follow RFC 7235"
        )

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ows(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _OWS:
            self.pos += 1

    def skip_list_separators(self) -> None:
        # RFC 7230 #rule: empty list elements (",,") are tolerated.
        while self.pos < len(self.text) and self.text[self.pos] in _OWS + ",":
            self.pos += 1

    def match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.pos)
        if not found:
            return None
        self.pos = found.end()
        return found.group(0)

    def looks_like_param(self) -> bool:
        """True when the text at pos is ``token BWS "="`` (an auth-param, not a new challenge)."""
        found = _TOKEN_RE.match(self.text, self.pos)
        if not found:
            return False
        rest = found.end()
        while rest < len(self.text) and self.text[rest] in _OWS:
            rest += 1
        return rest < len(self.text) and self.text[rest] == "="

    def quoted_string(self) -> str:
        self.pos += 1  # the opening quote, checked by the caller
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                if self.pos + 1 >= len(self.text):
                    break
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == '"':
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self.fail("unterminated quoted string")

    def param(self) -> tuple[str, str]:
        name = self.match(_TOKEN_RE)
        if name is None:
            raise self.fail("expected a parameter name")
        self.skip_ows()
        if self.peek() != "=":
            raise self.fail(f"expected '=' after parameter {name!r}")
        self.pos += 1
        self.skip_ows()
        if self.peek() == '"':
            return name.lower(), self.quoted_string()
        value = self.match(_BARE_VALUE_RE)
        if value is None:
            raise self.fail(f"expected a value for parameter {name!r}")
        return name.lower(), value

    def challenge(self) -> Challenge:
        scheme = self.match(_TOKEN_RE)
        if scheme is None:
            raise self.fail("expected an auth scheme")
        if not self.at_end() and self.peek() not in _OWS + ",":
            raise self.fail(f"unexpected character after auth scheme {scheme!r}")
        self.skip_ows()
        params: dict[str, str] = {}
        if self.at_end() or self.peek() == ",":
            return Challenge(scheme.lower(), params)
        # token68 first: "abc==" would otherwise read as a param "abc" with value "=".
        start = self.pos
        token68 = self.match(_TOKEN68_RE)
        self.skip_ows()
        if token68 is not None and (self.at_end() or self.peek() == ","):
            return Challenge(scheme.lower(), params, token68)
        self.pos = start
        if not self.looks_like_param():
            raise self.fail(f"expected parameters or a token68 after auth scheme {scheme!r}")
        while True:
            name, value = self.param()
            # RFC 7235: each name appears once; keep the first like Go's net/http callers do.
            params.setdefault(name, value)
            self.skip_ows()
            if self.at_end():
                break
            if self.peek() != ",":
                raise self.fail("expected ',' between parameters")
            self.skip_list_separators()
            if self.at_end() or not self.looks_like_param():
                break  # the next challenge starts here
        return Challenge(scheme.lower(), params)

    def challenges(self) -> list[Challenge]:
        found = []
        self.skip_list_separators()
        while not self.at_end():
            found.append(self.challenge())
            self.skip_list_separators()
        return found


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse one ``WWW-Authenticate`` value into its challenges (RFC 7235).

    Handles several challenges in one header, quoted strings with escapes and
    commas, token68, case-insensitive schemes and param names, and optional
    whitespace. An empty header gives ``[]``; malformed text raises
    :class:`InvalidInputError` (and nothing else).
    """
    if not isinstance(header, str):
        raise InvalidInputError(f"WWW-Authenticate must be text, not {type(header).__name__}")
    return _Parser(header).challenges()


def _parse_scope(scope: str) -> tuple[str, str, frozenset[str]] | None:
    """``type:name:a,b`` -> (type, name, actions); None if it does not follow the grammar.

    The name may hold one ':' (a host port), so actions are after the last ':'.
    """
    head, sep, actions = scope.rpartition(":")
    rtype, sep2, name = head.partition(":")
    if not (sep and sep2 and rtype and name):
        return None
    parsed = frozenset(a for a in actions.split(",") if a)
    return (rtype, name, parsed) if parsed else None


def clean_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Merge scopes per resource, drop duplicates, sort: the canonical form used as a cache key.

    Scopes that do not follow the scope grammar are kept verbatim.
    """
    merged: dict[tuple[str, str], set[str]] = {}
    verbatim: set[str] = set()
    for scope in scopes:
        scope = scope.strip()
        if not scope:
            continue
        parsed = _parse_scope(scope)
        if parsed is None:
            verbatim.add(scope)
            continue
        merged.setdefault(parsed[:2], set()).update(parsed[2])
    out = set(verbatim)
    for (rtype, name), actions in merged.items():
        out.add(f"{rtype}:{name}:{'*' if '*' in actions else ','.join(sorted(actions))}")
    return tuple(sorted(out))


def scopes_cover(granted: Iterable[str], wanted: Iterable[str]) -> bool:
    """True when a token asked for ``granted`` scopes also asked for everything in ``wanted``."""
    have: dict[tuple[str, str], set[str]] = {}
    have_verbatim: set[str] = set()
    for scope in granted:
        parsed = _parse_scope(scope)
        if parsed is None:
            have_verbatim.add(scope)
        else:
            have.setdefault(parsed[:2], set()).update(parsed[2])
    for scope in wanted:
        parsed = _parse_scope(scope)
        if parsed is None:
            if scope not in have_verbatim:
                return False
            continue
        actions = have.get(parsed[:2], set())
        if "*" not in actions and not parsed[2] <= actions:
            return False
    return True


def split_host_port(netloc: str) -> tuple[str, str]:
    """``host[:port]`` (IPv6 in brackets) -> (host lower-cased without brackets, port or '')."""
    netloc = netloc.rsplit("@", 1)[-1].strip().lower()
    if netloc.startswith("["):
        host, rest = netloc[1:].split("]", 1) if "]" in netloc else (netloc[1:], "")
        return host, rest[1:] if rest.startswith(":") else ""
    if netloc.count(":") == 1:
        host, port = netloc.split(":")
        return host, port
    return netloc, ""


def _same_host(a: str, b: str) -> bool:
    return split_host_port(a)[0] == split_host_port(b)[0]


def check_realm(realm: str | None, registry_host: str, plain_http_hosts: frozenset[str],
                *, with_credentials: bool) -> str:
    """Decide whether a token realm may be used; return it, or raise AuthenticationError saying why.

    Pure decision, no network. ``plain_http_hosts`` are the hosts the user
    allowed plain HTTP for.
    """
    if not realm:
        raise AuthenticationError(
            f"the registry {registry_host} asked for a Bearer token but named no realm (token service URL): "
            "the registry's auth configuration is broken; ask its operator to set a realm"
        )
    try:
        parts = urlsplit(realm)
        netloc = parts.netloc
        scheme = parts.scheme.lower()
        if parts.port is not None and parts.port <= 0:  # .port raises ValueError for a malformed port
            raise ValueError(realm)
    except ValueError:
        raise AuthenticationError(f"the registry {registry_host} named a token realm that is not a valid URL: {realm!r}") from None
    if scheme not in ("http", "https") or not parts.hostname:
        raise AuthenticationError(
            f"the registry {registry_host} named a token realm that is not an absolute http(s) URL: {realm!r}; "
            "refusing to use it"
        )
    if "@" in netloc:
        raise AuthenticationError(f"the registry {registry_host} named a token realm with user info in its URL; refusing to use it")
    if scheme == "https":
        return realm
    realm_host = netloc.lower()
    allowed = {h.lower() for h in plain_http_hosts}
    if is_loopback(realm_host) or realm_host in allowed or parts.hostname in {split_host_port(h)[0] for h in allowed}:
        return realm
    if not with_credentials and (registry_host.lower() in allowed or is_loopback(registry_host)):
        return realm  # the user accepted plain HTTP for this registry, and nothing secret is sent
    raise AuthenticationError(
        f"the registry {registry_host} sends its token requests to plain-HTTP {parts.hostname}: refusing to "
        "send credentials over an unencrypted connection to another host; use an https realm, or allow plain HTTP "
        "for that host explicitly"
    )
