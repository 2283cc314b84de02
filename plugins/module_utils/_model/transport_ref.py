# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Local copy targets in skopeo's spelling: ``oci:PATH[:NAME]``, ``oci-archive:PATH[:NAME]``,
``docker-archive:PATH[:REF]``.

As in skopeo (containers/image ``oci/layout`` and ``docker/archive``), the path
ends at the first colon after the transport, so ``oci:/srv/bundle:team/app:1.0``
is the layout ``/srv/bundle`` and the name ``team/app:1.0``. A path with a
colon in it cannot be spelled, as in skopeo.

A name is what ``org.opencontainers.image.ref.name`` holds in the layout's
``index.json`` (``RepoTags`` in a docker archive). This collection writes full
names, ``repository:tag`` (``team/app:1.0``), so one bundle can hold several
repositories; a bare tag (``1.0``, as ``skopeo copy ... oci:dir:1.0`` writes) is
read and written as well. :func:`split_name` tells the two apart.
"""
from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    InvalidReferenceError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    validate_repository,
    validate_tag,
)

OCI = "oci"
OCI_ARCHIVE = "oci-archive"
DOCKER_ARCHIVE = "docker-archive"
TRANSPORTS = (OCI, OCI_ARCHIVE, DOCKER_ARCHIVE)

#: The annotation naming an ``index.json`` entry (image-spec annotations.md).
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class LocalRef:
    """A local target: its transport, path and optional name (``None``: not given)."""

    transport: str
    path: str
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.transport}:{self.path}" + (f":{self.name}" if self.name is not None else "")

    @property
    def repository(self) -> str | None:
        """The repository part of the name (``team/app`` of ``team/app:1.0``), None for a bare tag."""
        return split_name(self.name)[0] if self.name is not None else None

    @property
    def tag(self) -> str | None:
        """The tag part of the name (``1.0`` of ``team/app:1.0`` or of ``1.0``)."""
        return split_name(self.name)[1] if self.name is not None else None


def is_local(text: str) -> bool:
    """True when ``text`` starts with one of the local transports (``oci:``, ...)."""
    return isinstance(text, str) and text.partition(":")[0] in TRANSPORTS and ":" in text


def parse_local_ref(text: str) -> LocalRef:
    """Parse ``transport:PATH[:NAME]``; raise :class:`InvalidInputError` saying what is wrong."""
    transport, sep, rest = text.partition(":") if isinstance(text, str) else ("", "", "")
    if not sep or transport not in TRANSPORTS:
        raise InvalidInputError(
            f"{text!r} is not a local target: expected oci:PATH[:NAME], oci-archive:PATH[:NAME] or "
            "docker-archive:PATH[:REPOSITORY:TAG]")
    path, sep, name = rest.partition(":")
    if not path:
        raise InvalidInputError(f"{text!r} has no path after '{transport}:': write {transport}:PATH[:NAME]")
    if "\x00" in path:
        raise InvalidInputError(f"{text!r}: the path contains a NUL character")
    if sep and not name:
        raise InvalidInputError(f"{text!r} ends with ':' but names nothing: drop the ':' or add a name")
    if not sep:
        return LocalRef(transport, path, None)
    split_name(name)  # validates
    return LocalRef(transport, path, name)


def split_name(name: str) -> tuple[str | None, str]:
    """``team/app:1.0`` -> ``("team/app", "1.0")``; ``1.0`` -> ``(None, "1.0")``.

    Raises :class:`InvalidInputError` when the name is neither a tag nor
    ``repository:tag`` (a digest or a host in the name is refused: a layout
    entry is found by its name, and the host is chosen when restoring).
    """
    repository, colon, tag = name.rpartition(":")
    try:
        if not colon:
            return None, validate_tag(name)
        validate_tag(tag)
        return validate_repository(repository), tag
    except InvalidReferenceError as exc:
        raise InvalidInputError(
            f"{name!r} is not a usable image name in a local target: give a tag (1.0) or repository:tag "
            f"(team/app:1.0), without registry host or digest ({exc.message})") from None


def join_name(repository: str | None, tag: str) -> str:
    """The inverse of :func:`split_name`."""
    return f"{repository}:{tag}" if repository else tag
