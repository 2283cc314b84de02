"""The extraction limits' options come from the policy's defaults, and say the same as the module docs."""
from __future__ import annotations

import yaml
from ansible_collections.ocireg.registry.plugins.module_utils._glue.limits import (
    limits_argument_spec,
    limits_from,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.unpack.entries import (
    Limits,
)
from ansible_collections.ocireg.registry.plugins.modules import (
    registry_artifact,
    registry_unpack,
)


def test_the_spec_defaults_are_the_documented_ones() -> None:
    spec = limits_argument_spec()
    assert spec == {"max_entries": {"type": "int", "default": 1000000},
                    "max_bytes": {"type": "int", "default": 17179869184}}
    for module in (registry_artifact, registry_unpack):
        options = yaml.safe_load(module.DOCUMENTATION)["options"]
        for name, option in spec.items():
            assert (options[name]["type"], options[name]["default"]) == (option["type"], option["default"]), name


def test_limits_from_params() -> None:
    params = {"max_entries": 5, "max_bytes": 10}
    assert limits_from(params) == Limits(max_entries=5, max_bytes=10)
    assert limits_from(params, allow_devices=True, allow_setuid=True) == Limits(5, 10, True, True)
