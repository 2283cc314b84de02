# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Single answers about one image: the registry lookup's queries.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
    normalize_registry,
    validate_repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.describe import (
    identifier_and_text,
    list_tags,
    select_child,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.options import (
    check_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.shape import (
    manifest_document,
    platform_string,
    shape_manifest,
    shape_referrer,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    fetch_config,
    fetch_manifest_or_none,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Manifest,
    )


# -- single answers (the registry lookup's queries) --------------------------------------
#: What the lookup's ``query`` option may ask.
QUERIES = ("digest", "tags", "exists", "platforms", "config", "labels", "manifest", "referrers", "repositories")


#: Queries whose answer is a list; the lookup concatenates them over its terms.
LIST_QUERIES = frozenset({"tags", "platforms", "referrers", "repositories"})


def _missing(text: str) -> NotFoundError:
    return NotFoundError(
        f"{text} does not exist: check the repository name and the tag or digest "
        "(query=exists answers true/false instead of failing)"
    )


def _fetch_existing(repo: Repository, ref: Reference | str, platform: str | None) -> tuple[Manifest, str]:
    """The manifest ``ref`` names (the platform's child of an index, if asked), or NotFoundError."""
    identifier, text = identifier_and_text(repo, ref)
    manifest = fetch_manifest_or_none(repo, identifier)
    if manifest is None:
        raise _missing(text)
    if platform and manifest.is_index:
        manifest = repo.fetch_manifest(select_child(manifest, platform).digest)
    return manifest, text


def _image_config(repo: Repository, manifest: Manifest, text: str) -> dict[str, Any]:
    """The shaped config of an image, or an error saying why there is none."""
    if manifest.is_index:
        platforms = [platform_string(c.platform) for c in manifest.manifests or ()]
        raise InvalidInputError(
            f"{text} is a multi-platform index ({', '.join(p for p in platforms if p) or 'no platforms'}): "
            "set platform= to pick the image to read the config of"
        )
    config = fetch_config(repo, manifest)
    if config is None:
        media_type = manifest.config.media_type if manifest.config is not None else "none"
        raise InvalidInputError(
            f"{text} has no image config (config media type: {media_type}); it is an artifact "
            "or a Docker schema 1 image: use query=manifest to read it"
        )
    return config


def query_image(repo: Repository, ref: Reference | str, query: str, *, platform: str | None = None,
                pattern: str | None = None, order: str = "lexical", attached_tags: bool = True) -> Any:
    """One answer about one image, for every query except ``repositories`` (see :data:`QUERIES`).

    ``digest`` costs one HEAD; ``exists`` one HEAD (plus the index with a
    platform); ``tags`` one tag listing; the others fetch the manifest and,
    for ``config`` / ``labels`` / single-image ``platforms``, the config blob.
    A missing image raises :class:`NotFoundError`, except for ``exists``
    (false) and ``tags`` (the repository's tags, whatever the tag; ``attached_tags=False``
    leaves out the tags of signatures, attestations, fallback indexes and leases).
    """
    platform = check_platform(platform)
    if query == "tags":
        return list_tags(repo, pattern, order, attached=attached_tags)
    identifier, text = identifier_and_text(repo, ref)
    if query in ("digest", "exists") and not platform:
        descriptor = repo.resolve(identifier)
        if query == "exists":
            return descriptor is not None
        if descriptor is None:
            raise _missing(text)
        return descriptor.digest
    if query == "exists":
        try:
            _fetch_existing(repo, ref, platform)
        except NotFoundError:  # the image, or the platform in its index
            return False
        return True
    manifest, text = _fetch_existing(repo, ref, platform)
    if query == "digest":
        return manifest.digest
    if query == "manifest":
        return manifest_document(manifest)
    if query == "referrers":
        return [shape_referrer(d) for d in repo.referrers(manifest.digest)]
    if query == "platforms":
        if manifest.is_index:
            return shape_manifest(manifest)["platforms"]
        config = fetch_config(repo, manifest)
        own = platform_string(config) if config else None
        return [own] if own else []
    if query in ("config", "labels"):
        config = _image_config(repo, manifest, text)
        return config if query == "config" else config["labels"]
    raise InvalidInputError(f"query: unknown value {query!r}: use one of {', '.join(QUERIES)}")


def split_catalog_term(term: str) -> tuple[str, str]:
    """``host[/prefix]`` -> ``(host, prefix)`` for the ``repositories`` query."""
    host, prefix = term.strip().partition("/")[::2]
    host = normalize_registry(host)
    prefix = prefix.strip("/")
    if prefix:
        validate_repository(prefix)
    return host, prefix
