# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-only facts about images: what registry_manifest_info returns.

A tag, digest or repository that does not exist is an answer here (``exists: false``), not an
error; authentication, permission and network failures still raise, so a typo in a password
never reads as "image missing".
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    select_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.options import (
    check_include,
    check_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.shape import (
    manifest_text,
    missing_result,
    platform_string,
    shape_layers,
    shape_manifest,
    shape_referrer,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    map_bounded,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    fetch_config,
    fetch_manifest_or_none,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Registry,
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Descriptor,
        Manifest,
    )


# -- I/O ---------------------------------------------------------------------------------
def identifier_and_text(repo: Repository, ref: Reference | str) -> tuple[str, str]:
    """``(identifier to fetch, reference text for the result)``."""
    if isinstance(ref, Reference):
        return ref.identifier, str(ref)
    separator = "@" if ":" in ref else ":"
    return ref, f"{_repo_name(repo)}{separator}{ref}"


def _repo_name(repo: Repository) -> str:
    return f"{repo.registry.host}/{repo.name}"


def select_child(manifest: Manifest, platform: str) -> Descriptor:
    """The index child for ``platform``; raises :class:`PlatformNotFoundError` listing what there is."""
    try:
        return select_platform(manifest, platform)
    except NotFoundError as err:
        raise PlatformNotFoundError(f"{err.message}: set platform to one of them", detail=err.detail) from None


class PlatformNotFoundError(NotFoundError):
    """An index exists but lists no image for the requested platform."""


def describe(repo: Repository, ref: Reference | str, platform: str | None = None,
             include: Iterable[str] = ()) -> dict[str, Any]:
    """Facts about the manifest ``ref`` names in ``repo`` (see the module's RETURN).

    ``ref`` is a :class:`Reference` or a bare tag / digest. With ``platform``
    an index is resolved to its child for that platform and the result
    describes the child (``index_digest`` says which index). A single-platform
    image is described as it is whatever ``platform`` says: its platform is
    only known from its config. Unknown tags, digests and repositories give
    ``exists: false``.
    """
    include = check_include(include)
    platform = check_platform(platform)
    identifier, text = identifier_and_text(repo, ref)
    manifest = fetch_manifest_or_none(repo, identifier)
    if manifest is None:
        result = missing_result(text, include)
        if "tags" in include:
            result["tags"] = list_tags(repo)
        return result
    child_platform = None
    index_digest = None
    if platform and manifest.is_index:
        child = select_child(manifest, platform)
        child_platform = platform_string(child.platform)
        index_digest = manifest.digest
        manifest = repo.fetch_manifest(child.digest)
    result = {"reference": text, **shape_manifest(manifest), "index_digest": index_digest}
    if child_platform and not result["platforms"]:
        result["platforms"] = [child_platform]
    if "config" in include:
        result["config"] = fetch_config(repo, manifest)
        own = platform_string(result["config"]) if result["config"] else None
        if own and not manifest.is_index and not result["platforms"]:
            result["platforms"] = [own]
    if "layers" in include:
        result["layers"], result["total_size"] = shape_layers(manifest)
    if "referrers" in include:
        result["referrers"] = [shape_referrer(d) for d in repo.referrers(manifest.digest)]
    if "tags" in include:
        result["tags"] = list_tags(repo)
    if "raw" in include:
        result["raw"] = manifest_text(manifest)
    return result


def describe_many(targets: Sequence[tuple[Repository, Reference | str]], platform: str | None = None,
                  include: Iterable[str] = (), max_concurrency: int | None = None) -> list[dict[str, Any]]:
    """:func:`describe` for each ``(repository, reference)``, concurrently and bounded, in input order."""
    include = check_include(include)
    return map_bounded(lambda target: describe(target[0], target[1], platform, include), list(targets),
                       max_concurrency)


def resolve_digests(repo: Repository, tags: Sequence[str], max_concurrency: int | None = None) -> dict[str, str | None]:
    """``{tag: digest}`` for ``tags`` (None for a tag that vanished meanwhile), resolved concurrently.

    One HEAD per tag (``Repository.resolve``): the cheapest way to read what a
    tag points at.
    """
    def one(tag: str) -> str | None:
        descriptor = repo.resolve(tag)
        return descriptor.digest if descriptor is not None else None

    return dict(zip(tags, map_bounded(one, list(tags), max_concurrency)))


def list_tags(repo: Repository, pattern: str | None = None, order: str = "lexical", *,
              attached: bool = True) -> list[str]:
    """The repository's tags matching ``pattern`` (whole-tag regex) in ``order``; [] if it does not exist.

    ``attached=False`` leaves out the tags that belong to another manifest rather than name an
    image of their own: cosign's ``sha256-<hex>.sig`` / ``.att`` / ``.sbom``, the referrers
    fallback ``sha256-<hex>`` and the prune lease ``ocireg-prune-lease-…`` (``_model/tag_schemes``).
    """
    # Loaded here: only a run that lists tags filters and orders them (start-up compiles less).
    from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_order import (
        TAG_SORTS,
        compile_full_match,
        keep_matching,
        sort_tags,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
        is_attached_tag,
        is_lease_tag,
    )

    if order not in TAG_SORTS:
        raise InvalidInputError(f"sort: unknown order {order!r}: use one of {', '.join(TAG_SORTS)}")
    regex = compile_full_match(pattern)  # before any request: a bad regex fails fast
    try:
        tags = repo.tags()
    except NotFoundError:
        return []
    if not attached:
        tags = [tag for tag in tags if not is_attached_tag(tag) and not is_lease_tag(tag)]
    return sort_tags(keep_matching(tags, regex), order)


def list_repositories(registry: Registry, prefix: str = "", pattern: str | None = None) -> list[str]:
    """Catalog entries at or below ``prefix`` whose whole name matches ``pattern``, sorted.

    The catalog endpoint is optional in the distribution spec and many hosted
    registries refuse it; that surfaces as the registry's error.
    """
    from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_order import (
        compile_full_match,
        keep_matching,
        under_prefix,
    )

    regex = compile_full_match(pattern)
    found = [name for name in registry.catalog() if under_prefix(name, prefix)]
    return sorted(keep_matching(found, regex))
