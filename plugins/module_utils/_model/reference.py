# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Image references: ``[host[:port]/]name[:tag][@digest]``.

The grammar is the distribution reference grammar (distribution-spec
``<name>`` and tag regexes, OCI digests); the defaults are Docker's, so that a
reference means here what it means to ``docker pull`` and ``skopeo``:

* no host -> ``docker.io``; a single path component on Docker Hub -> ``library/x``;
* the first path component is a host only if it contains ``.`` or ``:`` or is
  ``localhost`` (so ``myuser/app`` is a Docker Hub repository);
* ``index.docker.io``, ``registry-1.docker.io`` and ``docker.io`` are one registry,
  written ``docker.io``; its API lives at ``registry-1.docker.io`` (:attr:`Reference.api_host`).

Host names are case-insensitive and kept lowercase so equal references compare equal.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re

from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    validate_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidDigestError,
    InvalidReferenceError,
)

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
# Names under which Docker Hub is known; all of them mean DOCKER_HUB.
DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API_HOST})
DEFAULT_TAG = "latest"
#: Longest ``host/repository`` most clients accept (distribution-spec implementers note).
NAME_TOTAL_LENGTH_MAX = 255
TAG_LENGTH_MAX = 128

EXPECTED_REFERENCE = "expected [host[:port]/]name[:tag][@digest]"
_EXPECTED_TAG = "expected 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'"
_EXPECTED_HOST = "expected host[:port], e.g. registry.example.com:5000"
_EXPECTED_REPOSITORY = (
    "expected lowercase path components of [a-z0-9] separated by '/', each component joined "
    "internally only by '.', '_', '__' or dashes"
)

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")
# https://, http://, and skopeo's docker:// (oci:// etc. too): a pasted URL or transport, not a reference.
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _bad_reference(text: object, reason: str) -> InvalidReferenceError:
    return InvalidReferenceError(f"{text!r} is not a valid image reference: {reason} ({EXPECTED_REFERENCE})")


def _repository_problem(name: str) -> str | None:
    """Say what is wrong with a repository path, or None if it is valid."""
    if not name:
        return "the repository name is empty"
    if any(c.isupper() for c in name):
        return "repository names must be lowercase"
    for component in name.split("/"):
        if not component:
            return "the repository name has an empty path component (a leading, trailing or doubled '/')"
        if not _PATH_COMPONENT.fullmatch(component):
            return (
                f"invalid repository path component {component!r}: "
                "components use [a-z0-9] joined only by '.', '_', '__' or dashes"
            )
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        return f"the repository name is {len(name)} characters long, at most {NAME_TOTAL_LENGTH_MAX} are allowed"
    return None


def _tag_problem(tag: str) -> str | None:
    """Say what is wrong with a tag, or None if it is valid."""
    if not tag:
        return "the tag is empty"
    if len(tag) > TAG_LENGTH_MAX:
        return f"the tag is {len(tag)} characters long, at most {TAG_LENGTH_MAX} are allowed"
    if not _TAG.fullmatch(tag):
        return f"invalid tag {tag!r}: tags use [A-Za-z0-9_.-] and cannot start with '.' or '-'"
    return None


def _host_problem(host: str) -> str | None:
    """Say what is wrong with a ``host[:port]``, or None if it is valid."""
    if not host:
        return "the registry host is empty"
    if not _HOST.fullmatch(host):
        return f"invalid registry host {host!r}"
    return None


def _canonical_host(host: str) -> str:
    """Lowercase a valid host and fold Docker Hub's aliases into ``docker.io``."""
    host = host.lower()
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def normalize_registry(host: str) -> str:
    """Return the canonical form of a registry host: ``docker.io`` for Docker Hub, lowercase otherwise.

    Accepts what people paste as a registry: ``https://index.docker.io/v1/`` gives
    ``docker.io`` (the scheme and any path are dropped, as docker's auth file keys do).
    """
    if not isinstance(host, str):
        raise InvalidReferenceError(
            f"{host!r} is not a valid registry host: it must be a string ({_EXPECTED_HOST})"
        )
    text = host.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):]
            break
    text = text.split("/", 1)[0]
    problem = _host_problem(text)
    if problem:
        raise InvalidReferenceError(f"{host!r} is not a valid registry host: {problem} ({_EXPECTED_HOST})")
    return _canonical_host(text)


def _split_host_port(host: str) -> tuple[str, str | None]:
    if host.startswith("["):
        end = host.find("]")
        if end == -1:
            return host, None
        rest = host[end + 1:]
        return host[1:end], (rest[1:] if rest.startswith(":") else None)
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, port
    return host, None


def is_loopback(host: str) -> bool:
    """True if ``host`` (optionally with a port) is this machine: ``localhost``, 127.0.0.0/8 or ``::1``.

    Docker talks plain HTTP to such registries by default; so do we.
    """
    if not isinstance(host, str) or not host:
        return False
    name, _port = _split_host_port(host.strip())
    name = name.lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def validate_tag(tag: str) -> str:
    """Return ``tag`` unchanged if it is a valid tag; raise :class:`InvalidReferenceError` otherwise."""
    if not isinstance(tag, str):
        raise InvalidReferenceError(f"{tag!r} is not a valid tag: a tag must be a string ({_EXPECTED_TAG})")
    problem = _tag_problem(tag)
    if problem:
        raise InvalidReferenceError(f"{tag!r} is not a valid tag: {problem} ({_EXPECTED_TAG})")
    return tag


def validate_repository(name: str) -> str:
    """Return ``name`` unchanged if it is a valid repository path (no host); raise otherwise."""
    if not isinstance(name, str):
        raise InvalidReferenceError(
            f"{name!r} is not a valid repository name: it must be a string ({_EXPECTED_REPOSITORY})"
        )
    problem = _repository_problem(name)
    if problem:
        raise InvalidReferenceError(f"{name!r} is not a valid repository name: {problem} ({_EXPECTED_REPOSITORY})")
    return name


def _split_tag_digest(text: str, name_and_rest: str) -> tuple[str, str | None, str | None]:
    """Split ``name[:tag][@digest]`` into its parts, validating tag and digest.

    ``text`` is the whole user input, quoted in error messages.
    """
    digest = None
    if "@" in name_and_rest:
        name_and_rest, digest = name_and_rest.split("@", 1)
        if not digest:
            raise _bad_reference(text, "the digest after '@' is empty")
        try:
            validate_digest(digest)
        except InvalidDigestError as exc:
            raise _bad_reference(text, f"invalid digest {digest!r}: {_digest_reason(exc)}") from None
    tag = None
    colon = name_and_rest.rfind(":")
    if colon > name_and_rest.rfind("/"):
        name_and_rest, tag = name_and_rest[:colon], name_and_rest[colon + 1:]
        problem = _tag_problem(tag)
        if problem:
            raise _bad_reference(text, problem)
    return name_and_rest, tag, digest


def _digest_reason(exc: InvalidDigestError) -> str:
    # validate_digest says "'x' is not a valid digest: REASON (expected ...)"; keep only REASON.
    message = exc.message.split(": ", 1)[-1]
    return message.rsplit(" (expected", 1)[0]


@dataclasses.dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference. Instances are always valid and canonical.

    ``tag`` and ``digest`` may both be set (``name:tag@digest``); the digest then
    decides what is pulled and the tag is kept for display and tagging.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        registry = normalize_registry(self.registry)
        object.__setattr__(self, "registry", registry)
        repository = self.repository
        if registry == DOCKER_HUB and isinstance(repository, str) and repository and "/" not in repository:
            repository = f"library/{repository}"
        object.__setattr__(self, "repository", validate_repository(repository))
        if self.tag is not None:
            validate_tag(self.tag)
        if self.digest is not None:
            validate_digest(self.digest)
        if len(self.name) > NAME_TOTAL_LENGTH_MAX:
            raise InvalidReferenceError(
                f"{self.name!r} is too long: {len(self.name)} characters, at most "
                f"{NAME_TOTAL_LENGTH_MAX} are allowed for host/repository"
            )

    @classmethod
    def parse(cls, text: str, default_registry: str = DOCKER_HUB) -> Reference:
        """Parse ``[host[:port]/]name[:tag][@digest]``; raise :class:`InvalidReferenceError` saying what is wrong."""
        if not isinstance(text, str):
            raise _bad_reference(text, f"a reference must be a string, not {type(text).__name__}")
        if not text:
            raise _bad_reference(text, "it is empty")
        if any(c.isspace() for c in text):
            raise _bad_reference(text, "it contains whitespace")
        if _IMAGE_ID.fullmatch(text):
            raise _bad_reference(text, "a 64-character hex string is an image ID, not a repository name")
        scheme = _URL_SCHEME.match(text)
        if scheme:
            raise _bad_reference(text, f"an image reference takes no URL scheme: write {text[scheme.end():]!r}")
        name, tag, digest = _split_tag_digest(text, text)

        first, slash, remainder = name.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            problem = _host_problem(first)
            if problem:
                raise _bad_reference(text, problem)
            registry = _canonical_host(first)
        else:
            registry, remainder = normalize_registry(default_registry), name
        if registry == DOCKER_HUB and remainder and "/" not in remainder:
            remainder = f"library/{remainder}"
        problem = _repository_problem(remainder)
        if problem:
            raise _bad_reference(text, problem)
        full_name = f"{registry}/{remainder}"
        if len(full_name) > NAME_TOTAL_LENGTH_MAX:
            raise _bad_reference(
                text,
                f"host/repository is {len(full_name)} characters long, at most {NAME_TOTAL_LENGTH_MAX} are allowed",
            )
        return cls(registry, remainder, tag, digest)

    @classmethod
    def parse_relative(cls, text: str, base: Reference) -> Reference:
        """Parse ``:tag``, ``@digest`` or ``:tag@digest`` in ``base``'s repository, or any full reference.

        ``registry_tag``'s ``source: ':staging'`` means "the tag staging in the
        repository being tagged"; anything not starting with ``:`` or ``@`` is
        parsed as a full reference.
        """
        if isinstance(text, str) and text[:1] in (":", "@"):
            if any(c.isspace() for c in text):
                raise _bad_reference(text, "it contains whitespace")
            leftover, tag, digest = _split_tag_digest(text, text)
            if leftover or (text.startswith(":") and tag is None):
                # Only ":" + tag may come before "@": anything else (":a/b") is not a tag.
                raise _bad_reference(text, f"invalid tag {text[1:].split('@', 1)[0]!r}: {_EXPECTED_TAG}")
            return cls(base.registry, base.repository, tag, digest)
        return cls.parse(text)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to ask the registry for: the digest if any, else the tag, else ``latest``."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """The host serving the registry API (``registry-1.docker.io`` for Docker Hub)."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    def with_tag(self, tag: str) -> Reference:
        """The same repository at ``tag``; any digest is dropped (it would otherwise pin another image)."""
        return dataclasses.replace(self, tag=validate_tag(tag), digest=None)

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest``; the tag is kept for display."""
        return dataclasses.replace(self, digest=validate_digest(digest))
