# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What to say when a registry refuses a request with 405 / ``UNSUPPORTED``: pure, by method and host.

A 405 means different things per method: to a DELETE, that the registry does
not delete through the registry API (hosted services) or was not configured to
(a self-hosted Distribution without ``storage.delete.enabled``); to a manifest
PUT, that the registry does not take this content or this repository is
read-only; to a read, that the endpoint is not served.

The rule for the ``storage.delete.enabled`` hint: it is given only for a
DELETE refused with Distribution's ``UNSUPPORTED`` code by a registry that is
not a known hosted service. Hosted services are recognised by host name
(:data:`HOSTED`) and Docker Hub also by its pull rate-limit headers
(``RateLimit-Limit`` with ``Docker-RateLimit-Source``, which only Docker Hub
sends, so a Hub reached through a proxy or mirror name is still recognised); for them the
message names the provider's own way to delete instead. A host we cannot place
(a private name, a loopback address, a proxy in front of Hub) gets both
possibilities, the self-hosted setting first.
"""
from __future__ import annotations

from collections.abc import Collection

#: Host suffix -> (provider, how to delete there). Suffixes match the host or any subdomain.
HOSTED: tuple[tuple[str, str, str], ...] = (
    ("docker.io", "Docker Hub", "delete tags in the Docker Hub web UI or with the Docker Hub API"),
    ("ghcr.io", "GHCR", "delete package versions through the GitHub Packages API or web UI"),
    ("amazonaws.com", "Amazon ECR", "delete images with the ECR API (aws ecr batch-delete-image)"),
    ("gcr.io", "Google Container Registry", "delete images with gcloud or the Artifact Registry API"),
    ("pkg.dev", "Google Artifact Registry", "delete images with gcloud or the Artifact Registry API"),
    ("azurecr.io", "Azure Container Registry", ("check the repository's delete-enabled attribute (az acr repository "
                                                "update --delete-enabled true) or delete with az acr")),
    ("quay.io", "Quay", "delete tags in the Quay web UI or with the Quay API"),
)

DOCKER_HUB_HOSTED = HOSTED[0]


def hosted_provider(host: str, *, hub_rate_limits_seen: bool = False) -> tuple[str, str] | None:
    """``(provider, how to delete there)`` for a known hosted registry, else None."""
    name = host.lower() if host.startswith("[") else host.lower().partition(":")[0]  # the port dropped
    for suffix, provider, how in HOSTED:
        if name == suffix or name.endswith("." + suffix):
            return provider, how
    if hub_rate_limits_seen:
        return DOCKER_HUB_HOSTED[1], DOCKER_HUB_HOSTED[2]
    return None


def explain_405(method: str, host: str, codes: Collection[str], *, hub_rate_limits_seen: bool = False) -> str:
    """The advice that follows "<operation> on <host> failed: HTTP 405 (...)" for ``method``."""
    method = method.upper()
    if method == "DELETE":
        hosted = hosted_provider(host, hub_rate_limits_seen=hub_rate_limits_seen)
        if hosted is not None:
            provider, how = hosted
            return f"{provider} refuses deletes through the registry API; {how}"
        if "UNSUPPORTED" in codes:
            return ("the registry refuses deletes: a self-hosted Distribution (registry:2) needs "
                    "storage.delete.enabled: true; hosted registries such as Docker Hub and GHCR refuse deletes "
                    "through the registry API (delete with the provider's own API or web UI)")
        return "the registry does not allow DELETE here; check that the account may delete and the registry's settings"
    if method in ("PUT", "POST", "PATCH"):
        return ("the registry does not accept this write: the repository may be read-only (a pull-through cache, "
                "an immutable tag) or the registry does not take this kind of content")
    return "the registry does not serve this request; it may not implement this part of the distribution API"
