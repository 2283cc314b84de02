# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A repository's referrers: the referrers API, else the tag-schema fallback index, which writes keep current.

The code behind :meth:`.registry.Repository.referrers`, ``put_referrer_fallback`` and
``remove_referrer_fallback``. It lives apart so that a run that never reads nor writes referrers does not
load it (a module's payload is compiled on every run): those methods import it when called.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._client.pagination import (
    follow_link,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    referrers as refs,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    validate_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ManifestError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.json_documents import (
    json_object,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    referrers_tag,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from requests import Response

    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )


def referrers(repo: Repository, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
    """Manifests whose ``subject`` is ``digest``, optionally of one ``artifact_type``.

    The referrers API when the registry has it; on 404 the tag-schema
    fallback index (``sha256-<hex>``). Filtering is done here when the
    registry did not apply it.
    """
    validate_digest(digest)
    if repo.registry._referrers_api is not False:
        found = _from_api(repo, digest, artifact_type)
        if found is not None:
            return found
    document = _fallback_index(repo, digest)
    entries = [] if document is None else document.get("manifests") or []
    return refs.filter_referrers(_descriptors(entries, f"referrers index {referrers_tag(digest)}"),
                                 artifact_type)


def probe_api(repo: Repository, subject: str) -> None:
    """Ask the referrers API once about ``subject``, so the registry learns whether it has one."""
    _from_api(repo, subject, None)


def _from_api(repo: Repository, digest: str, artifact_type: str | None) -> list[Descriptor] | None:
    what = f"list referrers of {repo._display(digest)}"
    params = {"artifactType": artifact_type} if artifact_type else None
    url: str | None = repo._path("referrers", digest)
    found: list[Descriptor] = []
    visited: set[str] = set()
    while url:
        response = repo.transport.request(
            "GET", url, params=params, headers={"Accept": mt.OCI_INDEX}, scopes=repo._pull, ok=(200, 404, 406),
            max_body=repo.registry.options.max_manifest_bytes, operation=what)
        document = _referrers_page(response)
        if document is None:
            # 404, 406 (Artifactory), or a 200 that is not an OCI index (Artifact Registry's HTML login
            # page): no referrers API here, the tag schema is used (oras-go does the same).
            if visited:
                raise ManifestError(f"{what} on {repo.registry.host}: a next page is not a referrers index "
                                    f"(HTTP {response.status_code})")
            repo.registry._learn("_referrers_api", False)
            return None
        repo.registry._learn("_referrers_api", True)
        visited.add(response.url)
        page = _descriptors(document.get("manifests") or [], what)
        applied = {f.strip() for f in response.headers.get("OCI-Filters-Applied", "").split(",")}
        found.extend(page if "artifactType" in applied else refs.filter_referrers(page, artifact_type))
        url, params = follow_link(response, visited, f"{what} on {repo.registry.host}"), None
    return found


def _fallback_index(repo: Repository, subject: str) -> dict[str, Any] | None:
    """The fallback index document for ``subject``; None when the tag is absent or holds no referrers index.

    A registry that resolves the missing tag to the subject itself (GitLab) answers with the subject:
    an index subject would list its own children as its referrers (:func:`~.referrers.fallback_refusal`).
    """
    try:
        manifest = repo.fetch_manifest(referrers_tag(subject))
    except NotFoundError:
        return None
    if refs.fallback_refusal(subject, manifest.digest, manifest.is_index) is not None:
        return None
    return _json_object(manifest.raw, f"referrers index {referrers_tag(subject)}")


def put_fallback(repo: Repository, subject_digest: str, descriptor: Descriptor) -> bool:
    """Add ``descriptor`` to the fallback index of ``subject_digest``; True if the index changed."""
    validate_digest(subject_digest)
    tag = referrers_tag(subject_digest)
    try:
        current = repo.fetch_manifest(tag)
    except NotFoundError:
        current = None
    if current is not None and current.digest == subject_digest:
        # The registry resolved the missing tag to the subject (GitLab): there is no index yet, and the
        # subject's own bytes must not become one (its children would pass for referrers).
        current = None
    if current is not None and not current.is_index:
        raise ManifestError(
            f"tag {repo._display(tag)} holds a {current.media_type}, not a referrers index; refusing to "
            "overwrite it (something else uses the referrers tag name)")
    document = refs.empty_index() if current is None else _json_object(current.raw, f"referrers index {tag}")
    updated = refs.with_referrer(document, descriptor)
    if updated is None:
        return False
    repo.push_manifest(tag, refs.encode_index(updated), mt.OCI_INDEX, update_referrers=False)
    return True


def remove_fallback(repo: Repository, subject_digest: str, referrer_digest: str) -> bool:
    """Remove ``referrer_digest`` from the fallback index of ``subject_digest``; True if it changed."""
    validate_digest(subject_digest)
    validate_digest(referrer_digest)
    document = _fallback_index(repo, subject_digest)
    updated = None if document is None else refs.without_referrer(document, referrer_digest)
    if updated is None:
        return False
    repo.push_manifest(referrers_tag(subject_digest), refs.encode_index(updated), mt.OCI_INDEX,
                       update_referrers=False)
    return True


def _referrers_page(response: Response) -> dict[str, Any] | None:
    """A referrers API answer as a document, or None when it is no referrers index (no API).

    The spec's answer is an OCI index (``Content-Type`` of the index type); an
    answer that is not a JSON object with a ``manifests`` list is not one,
    whatever its status (a login page, a 404, a 406).
    """
    if response.status_code != 200:
        return None
    content_type = mt.base_type(response.headers.get("Content-Type"))
    if content_type and content_type not in (mt.OCI_INDEX, "application/json"):
        return None
    try:
        document = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
        return None
    return document


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    return json_object(raw, lambda found: ManifestError(f"{what}: the registry answered with {found}"))


def _descriptors(entries: Any, what: str) -> list[Descriptor]:
    if not isinstance(entries, list):
        raise ManifestError(f"{what}: 'manifests' is not a list")
    return [Descriptor.from_dict(entry) for entry in entries]
