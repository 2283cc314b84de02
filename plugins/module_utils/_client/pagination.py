# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Paginated list endpoints: ``/v2/_catalog`` and ``/v2/<name>/tags/list``.

The distribution spec pages these with ``n`` (page size) and ``last`` (the
last item seen), and a ``Link: <url>; rel="next"`` header (RFC 5988) that
clients should prefer. Registries differ in the details, all handled here:

* the Link target may be absolute or relative, with or without ``<>``;
* old registries send no Link and expect the client to pass ``last``;
* some ignore ``n`` and return everything at once (Distribution 2.8 tag lists);
* a ``null`` list means "no items";
* a page size above the registry's cap may be refused (ECR and Distribution 3.1:
  400 ``PAGINATION_NUMBER_INVALID``; Quay: 413): the first page is asked again
  with n=100, then without n;
* a broken registry can send the same next page forever: a repeated Link URL
  or ``last`` value stops with a clear error instead of looping.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    RegistryError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.json_documents import (
    json_object,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from requests import Response

    from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import Transport

#: The spec lets registries cap ``n``; 1000 is what Distribution and Docker Hub accept.
MAX_PAGE_SIZE = 1000
# Bound the number of pages so a registry that invents new Link URLs forever
# cannot keep a run going: 10 000 pages of 1000 is far beyond any real list.
MAX_PAGES = 10_000
#: The page size asked again when a registry refuses MAX_PAGE_SIZE (Quay's limit is 100).
SMALL_PAGE_SIZE = 100

# One Link entry: a target in <> or bare up to ';' / ',', then ';'-separated params.
_LINK_ENTRY = re.compile(r'\s*(?:<(?P<bracketed>[^>]*)>|(?P<bare>[^\s;,<>]+))\s*(?P<params>(?:;[^,;]*)*)\s*(?:,|$)')
_REL_PARAM = re.compile(r'^\s*rel\s*=\s*"?(?P<rels>[^"]*)"?\s*$', re.IGNORECASE)


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, as written (possibly relative); None if absent."""
    if not header:
        return None
    position = 0
    while position < len(header):
        match = _LINK_ENTRY.match(header, position)
        if not match or match.end() == position:
            return None
        position = match.end()
        target = match.group("bracketed") if match.group("bracketed") is not None else match.group("bare")
        for param in match.group("params").split(";"):
            rel = _REL_PARAM.match(param)
            if rel and "next" in rel.group("rels").lower().split():
                return target.strip()
    return None


def follow_link(response: Response, visited: set[str], what: str) -> str | None:
    """The absolute URL of the next page a response links to; None on the last page.

    ``visited`` holds the URLs already read; a link back to one of them is a
    registry bug that would loop forever, so it stops with an error.
    """
    link = next_link(response.headers.get("Link"))
    if not link:
        return None
    target: str = urljoin(response.url, link)
    if target in visited:
        raise TransportError(
            f"{what}: the registry's next-page link points at a page already read ({target.split('?')[0]}); "
            "stopping instead of looping. The list may be incomplete: report this to the registry's operator")
    return target


def page_size(requested: int) -> int:
    """Clamp a page size to what registries accept (1..1000)."""
    return max(1, min(int(requested), MAX_PAGE_SIZE))


def _items(response: Response, key: str, what: str) -> list[str]:
    document = json_object(response.content, lambda found: RegistryError(f"{what}: the registry answered with {found}"))
    items = document.get(key)
    if items is None:
        return []  # Distribution sends "tags": null for a repository whose tags were all deleted
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise RegistryError(f"{what}: '{key}' in the registry's answer is not a list of names")
    return items


def _page_size_refused(err: RegistryError) -> bool:
    return err.status == 413 or err.code == "PAGINATION_NUMBER_INVALID"


def paginate(
    transport: Transport,
    path: str,
    key: str,
    *,
    size: int = MAX_PAGE_SIZE,
    scopes: Collection[str] = (),
    operation: str,
) -> Iterator[str]:
    """Yield every item of a paginated list endpoint, each once, following Link or ``last``."""
    size = page_size(size)
    url: str = path
    params: dict[str, Any] | None = {"n": size}
    visited: set[str] = set()
    lasts: set[str] = set()
    seen: set[str] = set()
    smaller = [n for n in (SMALL_PAGE_SIZE, None) if n is None or n < size]
    for _page in range(MAX_PAGES):
        try:
            response = transport.request("GET", url, params=params, scopes=scopes, operation=operation)
        except RegistryError as err:
            # ECR / Distribution 3.1 answer 400 PAGINATION_NUMBER_INVALID above their cap, Quay 413 above
            # 100: the first page is asked again smaller (100, then without n, the registry's default).
            if visited or params is None or not smaller or not _page_size_refused(err):
                raise
            n = smaller.pop(0)
            params = {"n": n} if n is not None else {}
            size = n if n is not None else -1  # unknown page size: stop at the first page without a Link
            continue
        visited.add(response.url)
        items = _items(response, key, f"{operation} on {transport.host}")
        fresh = [item for item in items if item not in seen]
        seen.update(fresh)
        yield from fresh
        target = follow_link(response, visited, f"{operation} on {transport.host}")
        if target:
            url, params = target, None  # the link carries its own n / last
            continue
        # Without a Link, a full page may mean more items; a longer page means
        # the registry ignored n and sent everything; a page with nothing new
        # means the registry ignored last.
        if len(items) != size or not fresh:
            return
        last = items[-1]
        if last in lasts:
            raise TransportError(
                f"{operation} on {transport.host}: the registry returned a page ending at {last!r} twice; "
                "stopping instead of looping. The list may be incomplete: report this to the registry's operator")
        lasts.add(last)
        url, params = path, {"n": size, "last": last}
    raise TransportError(f"{operation} on {transport.host}: more than {MAX_PAGES} pages; giving up")
