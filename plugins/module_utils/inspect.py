# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-only facts about images: what ``registry_manifest_info`` and the ``registry`` lookup return.

:func:`describe` turns one reference into a plain dict (digest, media type,
platforms, config, layers, referrers, tags, raw manifest); :func:`describe_many`
does that for many references on a bounded thread pool. :func:`list_tags`,
:func:`sort_tags` and :func:`list_repositories` answer the listing questions.

A tag, digest or repository that does not exist is an answer here
(``exists: false``), not an error; authentication, permission and network
failures still raise, so a typo in a password never reads as "image missing".

The shaping helpers (``shape_*``, :func:`semver_key`, :func:`sort_tags`) are
pure and unit-tested; the rest only strings together ``Repository`` calls.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ansible_collections.ocireg.registry.plugins.module_utils.errors import (
    InvalidInputError,
    ManifestError,
    NotFoundError,
    TooLargeError,
)
from ansible_collections.ocireg.registry.plugins.module_utils.manifest import (
    Platform,
    parse_config,
    select_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils.mediatypes import is_config
from ansible_collections.ocireg.registry.plugins.module_utils.reference import (
    Reference,
    normalize_registry,
    validate_repository,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils.manifest import Descriptor, ImageConfig, Manifest
    from ansible_collections.ocireg.registry.plugins.module_utils.registry import Registry, Repository

#: What ``include`` may ask for on top of the manifest facts.
INCLUDE_CHOICES = ("config", "layers", "referrers", "tags", "raw")
#: Orders :func:`sort_tags` knows.
TAG_SORTS = ("lexical", "semver", "none")
#: Image configs are a few KiB (a long build history makes them tens of KiB).
#: 4 MiB is the cap Distribution and containerd put on manifests and oras-go
#: on metadata: anything bigger is not an image config, and reading it whole
#: into memory (we parse JSON) must not be open-ended.
CONFIG_SIZE_CAP = 4 * 1024 * 1024
#: Parallel requests for ``references`` / tag digests: enough to hide round
#: trips, few enough that registries with per-client rate limits stay calm.
DEFAULT_MAX_CONCURRENCY = 8
#: The most a user may ask for: more threads only queue inside the registry.
MAX_CONCURRENCY_LIMIT = 64

#: The platform BuildKit gives attestation manifests inside an index.
ATTESTATION_PLATFORM = "unknown/unknown"

_T = TypeVar("_T")
_R = TypeVar("_R")


# -- pure: options -----------------------------------------------------------------------
def check_include(include: Iterable[str] | None) -> tuple[str, ...]:
    """Validate ``include`` values, keeping their order and dropping repeats."""
    found: list[str] = []
    for item in include or ():
        if item not in INCLUDE_CHOICES:
            raise InvalidInputError(
                f"include: unknown value {item!r}: use any of {', '.join(INCLUDE_CHOICES)}"
            )
        if item not in found:
            found.append(item)
    return tuple(found)


def check_concurrency(value: int | None) -> int:
    """``max_concurrency`` as a usable worker count (default when None)."""
    if value is None:
        return DEFAULT_MAX_CONCURRENCY
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY_LIMIT:
        raise InvalidInputError(
            f"max_concurrency must be a whole number from 1 to {MAX_CONCURRENCY_LIMIT}, got {value!r}"
        )
    return value


def check_platform(platform: str | None) -> str | None:
    """Validate a ``platform`` option (``os/arch[/variant]``) before any request; None stays None."""
    if platform is None or platform == "":
        return None
    Platform.parse(platform)  # raises, saying what is wrong
    return platform


def compile_full_match(pattern: str | None, option: str = "pattern") -> re.Pattern[str] | None:
    """Compile a user regex that must match a whole name; None when no pattern was given."""
    if pattern is None or pattern == "":
        return None
    try:
        return re.compile(pattern)
    except re.error as err:
        raise InvalidInputError(
            f"{option}: {pattern!r} is not a valid Python regular expression ({err}); "
            "it must match whole names, e.g. 'v1\\..*' or 'release-[0-9]+'"
        ) from None


def keep_matching(names: Iterable[str], regex: re.Pattern[str] | None) -> list[str]:
    """The names ``regex`` (from :func:`compile_full_match`) matches in full; all of them for None."""
    return [name for name in names if regex is None or regex.fullmatch(name)]


def under_prefix(name: str, prefix: str) -> bool:
    """True if repository ``name`` is ``prefix`` or below it, at a path boundary.

    ``team`` covers ``team`` and ``team/app`` but not ``teams/app``, as a
    directory would; an empty prefix covers everything.
    """
    prefix = prefix.strip("/")
    return not prefix or name == prefix or name.startswith(prefix + "/")


# -- pure: tag order ---------------------------------------------------------------------
# Semantic-version-looking tags: optional "v", one to three numbers, optional
# "-prerelease". Build metadata ("+...") cannot occur: "+" is not a tag character.
_SEMVER = re.compile(
    r"[vV]?(?P<major>\d+)(?:\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?)?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


def semver_key(tag: str) -> tuple[Any, ...] | None:
    """A sort key giving semantic-version precedence, or None if ``tag`` is not a version.

    ``1.2`` means ``1.2.0``; a pre-release (``1.2.0-rc.1``) sorts before its
    release; pre-release identifiers compare numerically when numeric and
    before alphanumeric ones (semver.org, item 11). Equal precedence falls
    back to the tag text so the order is total and stable.
    """
    match = _SEMVER.fullmatch(tag)
    if match is None:
        return None
    numbers = tuple(int(match[part] or 0) for part in ("major", "minor", "patch"))
    pre = match["pre"]
    if pre is None:
        pre_key: tuple[Any, ...] = (1, ())
    else:
        pre_key = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (*numbers, *pre_key, tag)


def sort_tags(tags: Iterable[str], order: str = "lexical") -> list[str]:
    """Tags in ``order``: ``lexical`` (code point order), ``semver`` or ``none`` (as the registry sent them).

    With ``semver``, tags that are not versions (``latest``, ``main``) come
    first in lexical order and versions follow from lowest to highest, so the
    last element is the newest version.
    """
    tags = list(tags)
    if order == "none":
        return tags
    if order == "lexical":
        return sorted(tags)
    if order == "semver":
        plain = sorted(t for t in tags if semver_key(t) is None)
        versions = sorted((t for t in tags if semver_key(t) is not None), key=semver_key)
        return plain + versions
    raise InvalidInputError(f"sort: unknown order {order!r}: use one of {', '.join(TAG_SORTS)}")


# -- pure: shaping -----------------------------------------------------------------------
def platform_string(platform: Platform | Mapping[str, Any] | str | None) -> str | None:
    """``os/arch[/variant]`` for a platform (None when unknown or incomplete)."""
    if platform is None:
        return None
    if isinstance(platform, str):
        return platform or None
    if isinstance(platform, Mapping):
        os_name, arch = platform.get("os"), platform.get("architecture")
        if not os_name or not arch:
            return None
        return "/".join(str(p) for p in (os_name, arch, platform.get("variant")) if p)
    return str(platform)


def shape_descriptor(descriptor: Descriptor) -> dict[str, Any]:
    """``digest`` / ``media_type`` / ``size`` of a descriptor."""
    return {"digest": descriptor.digest, "media_type": descriptor.media_type, "size": descriptor.size}


def shape_child(descriptor: Descriptor) -> dict[str, Any]:
    """One entry of ``manifests``: an index child with its platform string."""
    return {
        **shape_descriptor(descriptor),
        "platform": platform_string(descriptor.platform),
        "annotations": dict(descriptor.annotations or {}),
        "artifact_type": descriptor.artifact_type,
    }


def shape_referrer(descriptor: Descriptor) -> dict[str, Any]:
    """One entry of ``referrers``."""
    return {
        **shape_descriptor(descriptor),
        "artifact_type": descriptor.artifact_type,
        "annotations": dict(descriptor.annotations or {}),
    }


def shape_manifest(manifest: Manifest) -> dict[str, Any]:
    """The facts every result has, read from the manifest alone (no extra request)."""
    children = list(manifest.manifests or ()) if manifest.is_index else []
    platforms: list[str] = []
    for child in children:
        text = platform_string(child.platform)
        # unknown/unknown children are build attestations (BuildKit), not images to run.
        if text and text not in platforms and not text.startswith(ATTESTATION_PLATFORM):
            platforms.append(text)
    return {
        "exists": True,
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "size": manifest.size,
        "schema_version": manifest.schema_version,
        "manifests": [shape_child(child) for child in children],
        "platforms": platforms,
        "annotations": dict(manifest.annotations or {}),
        "artifact_type": manifest.artifact_type,
        "subject": shape_descriptor(manifest.subject) if manifest.subject is not None else None,
        "index_digest": None,
    }


def shape_config(config: ImageConfig, descriptor: Descriptor | None = None) -> dict[str, Any]:
    """``config`` of a result: the runtime facts of an image config blob."""
    shaped = {
        "digest": descriptor.digest if descriptor is not None else None,
        "architecture": config.architecture,
        "os": config.os,
        "variant": getattr(config, "variant", None),
        "created": config.created,
        "labels": dict(config.labels or {}),
        "env": list(config.env or []),
        "entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
        "cmd": list(config.cmd) if config.cmd is not None else None,
        "user": config.user,
        "working_dir": config.working_dir,
        "exposed_ports": sorted(config.exposed_ports or []),
        "history_length": config.history_length,
    }
    return shaped


def shape_layers(manifest: Manifest) -> tuple[list[dict[str, Any]], int]:
    """``layers`` and ``total_size`` (sum of the layer blob sizes, as stored: compressed)."""
    layers = [shape_descriptor(layer) for layer in (manifest.layers or ())]
    return layers, sum(layer["size"] or 0 for layer in layers)


def missing_result(reference: str, include: Sequence[str] = ()) -> dict[str, Any]:
    """The result for a reference that does not exist: every key present, values empty."""
    result: dict[str, Any] = {
        "reference": reference,
        "exists": False,
        "digest": None,
        "media_type": None,
        "size": None,
        "schema_version": None,
        "manifests": [],
        "platforms": [],
        "annotations": {},
        "artifact_type": None,
        "subject": None,
        "index_digest": None,
    }
    for item in include:
        result.update(_EMPTY_INCLUDES[item])
    return result


_EMPTY_INCLUDES: dict[str, dict[str, Any]] = {
    "config": {"config": None},
    "layers": {"layers": [], "total_size": None},
    "referrers": {"referrers": []},
    "tags": {"tags": []},
    "raw": {"raw": None},
}


def manifest_text(manifest: Manifest) -> str:
    """The manifest bytes as text (manifests are JSON, so UTF-8)."""
    try:
        return manifest.raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"manifest {manifest.digest} is not UTF-8 text, so it is not a JSON manifest") from None


def manifest_document(manifest: Manifest) -> dict[str, Any]:
    """The manifest JSON as data (what the lookup's ``query=manifest`` returns)."""
    return json.loads(manifest_text(manifest))


# -- I/O ---------------------------------------------------------------------------------
def _as_reference(repo: Repository, ref: Reference | str) -> tuple[str, str]:
    """``(identifier to fetch, reference text for the result)``."""
    if isinstance(ref, Reference):
        return ref.identifier, str(ref)
    separator = "@" if ":" in ref else ":"
    return ref, f"{_repo_name(repo)}{separator}{ref}"


def _repo_name(repo: Repository) -> str:
    return f"{repo.registry.host}/{repo.name}"


def fetch_manifest_or_none(repo: Repository, identifier: str) -> Manifest | None:
    """The manifest at a tag or digest, or None if it (or the whole repository) does not exist."""
    try:
        return repo.fetch_manifest(identifier)
    except NotFoundError:
        return None


def fetch_config(repo: Repository, manifest: Manifest) -> dict[str, Any] | None:
    """The shaped image config of an image manifest, or None when it has none.

    Artifacts (empty or custom config types), indexes and schema 1 manifests
    have no image config. The blob is size-capped (:data:`CONFIG_SIZE_CAP`)
    and verified against its digest while it streams.
    """
    descriptor = None if manifest.is_index else manifest.config
    if descriptor is None or not is_config(descriptor.media_type):
        return None
    if descriptor.size is not None and descriptor.size > CONFIG_SIZE_CAP:
        raise TooLargeError(_config_too_large(descriptor.digest, descriptor.size))
    data = bytearray()
    with repo.fetch_blob(descriptor.digest, size=descriptor.size) as chunks:
        for chunk in chunks:
            data += chunk
            if len(data) > CONFIG_SIZE_CAP:
                raise TooLargeError(_config_too_large(descriptor.digest, len(data)))
    return shape_config(parse_config(bytes(data)), descriptor)


def _config_too_large(digest: str, size: int) -> str:
    return (
        f"image config {digest} is {size} bytes, more than the {CONFIG_SIZE_CAP // (1024 * 1024)} MiB "
        "an image config can reasonably be; leave 'config' out of include for this image"
    )


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
    identifier, text = _as_reference(repo, ref)
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


def map_bounded(function: Callable[[_T], _R], items: Sequence[_T], max_concurrency: int | None = None) -> list[_R]:
    """``[function(item) for item in items]`` on at most ``max_concurrency`` threads, in input order.

    If calls fail, the error of the first failing item (in input order) is
    raised after the running calls finish; calls not yet started are dropped.
    """
    workers = min(check_concurrency(max_concurrency), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocireg-inspect") as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


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


def list_tags(repo: Repository, pattern: str | None = None, order: str = "lexical") -> list[str]:
    """The repository's tags matching ``pattern`` (whole-tag regex) in ``order``; [] if it does not exist."""
    if order not in TAG_SORTS:
        raise InvalidInputError(f"sort: unknown order {order!r}: use one of {', '.join(TAG_SORTS)}")
    regex = compile_full_match(pattern)  # before any request: a bad regex fails fast
    try:
        tags = repo.tags()
    except NotFoundError:
        return []
    return sort_tags(keep_matching(tags, regex), order)


def list_repositories(registry: Registry, prefix: str = "", pattern: str | None = None) -> list[str]:
    """Catalog entries at or below ``prefix`` whose whole name matches ``pattern``, sorted.

    The catalog endpoint is optional in the distribution spec and many hosted
    registries refuse it; that surfaces as the registry's error.
    """
    regex = compile_full_match(pattern)
    found = [name for name in registry.catalog() if under_prefix(name, prefix)]
    return sorted(keep_matching(found, regex))


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
    identifier, text = _as_reference(repo, ref)
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
                pattern: str | None = None, order: str = "lexical") -> Any:
    """One answer about one image, for every query except ``repositories`` (see :data:`QUERIES`).

    ``digest`` costs one HEAD; ``exists`` one HEAD (plus the index with a
    platform); ``tags`` one tag listing; the others fetch the manifest and,
    for ``config`` / ``labels`` / single-image ``platforms``, the config blob.
    A missing image raises :class:`NotFoundError`, except for ``exists``
    (false) and ``tags`` (the repository's tags, whatever the tag).
    """
    platform = check_platform(platform)
    if query == "tags":
        return list_tags(repo, pattern, order)
    identifier, text = _as_reference(repo, ref)
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
