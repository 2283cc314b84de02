"""What a 405 / UNSUPPORTED answer is explained as, per method and host (pure)."""
from __future__ import annotations

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.refusals import (
    explain_405,
    hosted_provider,
)


@pytest.mark.parametrize("host, provider", [
    ("registry-1.docker.io", "Docker Hub"),
    ("ghcr.io", "GHCR"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "Amazon ECR"),
    ("europe-docker.pkg.dev", "Google Artifact Registry"),
    ("myreg.azurecr.io:443", "Azure Container Registry"),
    ("quay.io", "Quay"),
    ("127.0.0.1:5000", None),
    ("registry.internal.example", None),
    ("notghcr.io", None),  # a suffix match needs a dot boundary
])
def test_hosted_provider_by_host(host: str, provider: str | None) -> None:
    found = hosted_provider(host)
    assert (found[0] if found else None) == provider


def test_docker_hub_is_recognised_by_its_rate_limit_headers_on_any_host() -> None:
    assert hosted_provider("127.0.0.1:5000", hub_rate_limits_seen=True)[0] == "Docker Hub"


def test_a_hosted_registry_delete_refusal_does_not_mention_storage_delete() -> None:
    text = explain_405("DELETE", "ghcr.io", {"UNSUPPORTED"})
    assert text.startswith("GHCR refuses deletes through the registry API")
    assert "GitHub Packages API" in text and "storage.delete" not in text
    hub = explain_405("DELETE", "127.0.0.1:5000", {"UNSUPPORTED"}, hub_rate_limits_seen=True)
    assert hub.startswith("Docker Hub refuses deletes") and "storage.delete" not in hub


def test_a_self_hosted_distribution_delete_refusal_names_the_setting() -> None:
    text = explain_405("DELETE", "127.0.0.1:5000", {"UNSUPPORTED"})
    assert "storage.delete.enabled: true" in text and "GHCR" in text


def test_a_405_without_distributions_code_does_not_guess_storage_delete() -> None:
    assert "storage.delete" not in explain_405("DELETE", "registry.internal.example", set())


@pytest.mark.parametrize("method", ["PUT", "POST", "PATCH", "GET", "HEAD"])
def test_only_deletes_get_delete_advice(method: str) -> None:
    """A manifest PUT refused with 405 (ECR and a subject) is not about deleting."""
    text = explain_405(method, "127.0.0.1:5000", {"UNSUPPORTED"})
    assert "delete" not in text.lower()
