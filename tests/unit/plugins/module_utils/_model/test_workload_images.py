"""Unit tests for _model/workload_images.py: the references running workloads name, read from the
recorded k8s_info output in tests/fixtures/k8s_info (written by hand, no cluster), lists and mappings."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._model.workload_images import (
    images_in,
    parse_image,
    strip_runtime_prefix,
)

FIXTURES = Path(__file__).resolve().parents[4] / "fixtures" / "k8s_info"
REG = "registry.example.com:5000"
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
NGINX = "sha256:6db391d1c0cfb30588ba0bf72ea999404f2764febf0f1f196acd5867ac7efa7e"
BUSYBOX = "sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7"


def load(name: str):
    return yaml.safe_load((FIXTURES / name).read_text())


def test_pods_give_specs_and_the_digests_that_run():
    # Each container's spec tag and the digest its status says it ran come as one NAME:TAG@DIGEST;
    # the init container named a digest in its spec, so there is no tag to pair.
    assert images_in(load("pods.yml")) == sorted([
        f"{REG}/shop/web:v1@{D1}",
        f"{REG}/shop/worker:2.3@{D2}", f"{REG}/shop/worker@{D2}",
        f"{REG}/shop/tools:2026.11@{D3}",
        f"docker.io/library/nginx:1.25@{NGINX}",
        f"docker.io/library/busybox:1.36@{BUSYBOX}",
    ])


def pod(containers, statuses, key="containers", status_key="containerStatuses"):
    return {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
            "spec": {key: containers}, "status": {status_key: statuses}}


def test_a_tag_and_the_digest_it_ran_pair_across_runtime_prefix_and_docker_hub_spelling():
    assert images_in(pod([{"name": "a", "image": "reg/app:dev-1-rc"}],
                         [{"name": "a", "image": "reg/app:dev-1-rc", "imageID": f"docker-pullable://reg/app@{D1}"}])
                     ) == [f"reg/app:dev-1-rc@{D1}"]
    # Without a tag the runtime pulled latest; the digest says which, so latest is not looked up either.
    assert images_in(pod([{"name": "a", "image": "reg/app"}], [{"name": "a", "imageID": f"reg/app@{D1}"}])
                     ) == [f"reg/app@{D1}"]
    assert images_in(pod([{"name": "a", "image": "nginx:1.25"}],
                         [{"name": "a", "imageID": f"docker.io/library/nginx@{D1}"}])) == [f"nginx:1.25@{D1}"]


@pytest.mark.parametrize(("key", "status_key"), [("initContainers", "initContainerStatuses"),
                                                 ("ephemeralContainers", "ephemeralContainerStatuses")])
def test_init_and_ephemeral_containers_pair_with_their_own_statuses(key, status_key):
    assert images_in(pod([{"name": "i", "image": "reg/init:1"}],
                         [{"name": "i", "imageID": f"reg/init@{D1}"}], key, status_key)) == [f"reg/init:1@{D1}"]
    # A status list of another kind does not pair: a container's name is unique per list only.
    spec_only = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {key: [{"name": "i", "image": "reg/init:1"}]},
                 "status": {"containerStatuses": [{"name": "i", "imageID": f"reg/init@{D1}"}]}}
    assert images_in(spec_only) == ["reg/init:1", f"reg/init@{D1}"]


@pytest.mark.parametrize(("containers", "statuses", "expected"), [
    pytest.param([{"name": "a", "image": "reg/app:1"}], [], ["reg/app:1"], id="no-status"),
    pytest.param([{"name": "a", "image": "reg/app:1"}], [{"name": "a", "imageID": f"mirror/app@{D1}"}],
                 ["reg/app:1", f"mirror/app@{D1}"], id="other-repository"),
    pytest.param([{"name": "a", "image": "reg/app:1"}], [{"name": "b", "imageID": f"reg/app@{D1}"}],
                 ["reg/app:1", f"reg/app@{D1}"], id="status-of-another-container"),
    pytest.param([{"name": "a", "image": "reg/app:1"}], [{"name": "a", "imageID": "reg/app:1"}],
                 ["reg/app:1"], id="imageID-without-digest"),
    pytest.param([{"name": "a", "image": "reg/app:1"}], [{"name": "a", "imageID": D1}],
                 ["reg/app:1", D1], id="imageID-a-bare-digest"),
    pytest.param([{"image": "reg/app:1"}], [{"imageID": f"reg/app@{D1}"}],
                 ["reg/app:1", f"reg/app@{D1}"], id="no-names"),
    pytest.param([{"name": "a", "image": f"reg/app@{D1}"}], [{"name": "a", "imageID": f"reg/app@{D1}"}],
                 [f"reg/app@{D1}"], id="spec-by-digest"),
])
def test_what_does_not_pair_is_given_as_today(containers, statuses, expected):
    assert images_in(pod(containers, statuses)) == sorted(expected)


def test_a_status_image_other_than_the_paired_one_is_kept():
    assert images_in(pod([{"name": "a", "image": "reg/app:1"}],
                         [{"name": "a", "image": "reg/app:2", "imageID": f"reg/app@{D1}"}])
                     ) == [f"reg/app:1@{D1}", "reg/app:2"]


def test_workload_templates_from_a_looped_k8s_info():
    assert images_in(load("workloads.yml")) == sorted([
        f"{REG}/shop/web:v1", "docker.io/library/nginx:1.25", f"{REG}/shop/worker@{D2}",
        f"{REG}/shop/worker:2.3", f"{REG}/shop/tools:2026.11",
    ])


def test_lists_mappings_and_kubernetes_lists_mix():
    sources = [
        ["reg/a:1", "  reg/a:1 "],
        {"app_image": "reg/b:2", "sidecars": ["reg/c:3"], "unset": None},
        {"apiVersion": "v1", "kind": "List", "items": [
            {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"image": "reg/d:4"}]}}]},
        D1,
    ]
    assert images_in(sources) == ["reg/a:1", "reg/b:2", "reg/c:3", "reg/d:4", D1]


def test_a_kubernetes_object_s_other_strings_are_not_images():
    pod = {"kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
           "spec": {"nodeName": "node-a", "containers": [{"name": "web", "image": "reg/a:1"}]},
           "status": {"phase": "Running", "containerStatuses": [{"name": "web", "imageID": ""}]}}
    assert images_in({"resources": [pod], "changed": False}) == ["reg/a:1"]


@pytest.mark.parametrize(("sources", "says"), [
    ([1], "sources[0] is int 1, not an image reference"),
    ({"a": ["  "]}, "sources.a[0] is blank"),
    ({"resources": [{"kind": "Pod", "spec": {"containers": [{"image": 5}]}}]},
     "sources.resources[0].spec.containers[0].image (Pod (no name), a container without a name) is int 5"),
])
def test_what_is_not_a_reference_is_named_with_its_place(sources, says):
    with pytest.raises(InvalidInputError, match=r"^" + re.escape(says)):
        images_in(sources)


@pytest.mark.parametrize(("sources", "place", "reason"), [
    ({"resources": [{"kind": "Pod", "metadata": {"namespace": "shop", "name": "web-1"},
                     "spec": {"containers": [{"name": "sidecar", "image": "reg/a:1"},
                                             {"name": "app", "image": "http://reg/app:1"}]}}]},
     "sources.resources[0].spec.containers[1].image (Pod shop/web-1, container app)",
     "'http://reg/app:1' is not a valid image reference"),
    ({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "image": "Reg/App:1"}]}}}},
     "sources.spec.template.spec.initContainers[0].image (Deployment web, container init)",
     "'Reg/App:1' is not a valid image reference"),
    ({"resources": [{"kind": "Pod", "metadata": {"name": "p"}, "spec": {},
                     "status": {"containerStatuses": [{"name": "app", "imageID": "docker-pullable://sha256:12"}]}}]},
     "sources.resources[0].status.containerStatuses[0].imageID (Pod p, container app)",
     "'sha256:12' is not a valid digest"),
    ({"web": {"app_image": "reg/app:1.4 # pinned"}}, "sources.web.app_image", "it contains whitespace"),
])
def test_a_string_that_is_no_reference_is_named_with_its_object_and_container(sources, place, reason):
    with pytest.raises(InvalidInputError) as caught:
        images_in(sources)
    message = caught.value.message
    assert message.startswith(f"{place} is no image reference: "), message
    assert reason in message and "\n" not in message, message


def test_parse_image_reads_what_a_runtime_pulls():
    assert str(parse_image(" docker-pullable://reg.example.com/app ")) == "reg.example.com/app:latest"
    assert parse_image("docker://" + D1) == D1
    assert parse_image("reg/app@" + D1).digest == D1


def test_runtime_prefixes():
    assert strip_runtime_prefix("docker-pullable://r/a@" + D1) == "r/a@" + D1
    assert strip_runtime_prefix("docker://" + D1) == D1
    assert strip_runtime_prefix("r/a:1") == "r/a:1"
