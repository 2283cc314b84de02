"""Unit tests for plugins/filter/images_in_use.py: the filter over recorded k8s_info output and plain data,
and its one-line refusal."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.ocireg.registry.plugins.filter.images_in_use import FilterModule, images_in_use

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "k8s_info"


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"images_in_use": images_in_use}


def test_pods_and_inventory_variables_together():
    pods = yaml.safe_load((FIXTURES / "pods.yml").read_text())
    found = images_in_use([pods, {"app_image": "registry.example.com:5000/shop/extra:1"}])
    assert "registry.example.com:5000/shop/web:v1@sha256:" + "1" * 64 in found  # spec tag paired with what ran
    assert "registry.example.com:5000/shop/extra:1" in found
    assert found == sorted(set(found))


def test_bad_data_is_one_filter_error_with_its_place():
    with pytest.raises(AnsibleFilterError, match=r"^images_in_use\[1\] is int 3, not an image reference"):
        images_in_use(["reg/a:1", 3])


def test_a_string_that_is_no_reference_fails_naming_it_and_its_container():
    pod = {"kind": "Pod", "metadata": {"namespace": "shop", "name": "web-1"},
           "spec": {"containers": [{"name": "app", "image": "reg/app:v1:broken"}]}}
    with pytest.raises(AnsibleFilterError) as caught:
        images_in_use([{"resources": [pod]}])
    message = str(caught.value)
    assert message.startswith("images_in_use[0].resources[0].spec.containers[0].image (Pod shop/web-1, container app) "
                              "is no image reference: 'reg/app:v1:broken' is not a valid image reference"), message
    assert "\n" not in message
