"""The roles' lists of valid policy / promotion keys follow the modules' own argument specs (a misspelt key is refused before anything runs).

roles/retention refuses unknown keys in a policy with a list in roles/retention/vars/main.yml; that
list must be exactly registry_prune's options plus ``name``, and roles/retention/tasks/prune.yml must
pass every one of them through (a key the role accepted but dropped would be as silent as a typo).
Run this file as a script to print the list to paste after a module change.
"""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def prune_option_names() -> list[str]:
    from ansible_collections.ocireg.registry.plugins.modules.registry_prune import (
        argument_spec,
    )
    return sorted(argument_spec())


def test_retention_policy_keys_are_registry_prune_options_plus_name() -> None:
    listed = yaml.safe_load((ROOT / "roles/retention/vars/main.yml").read_text())["retention_policy_keys"]
    assert listed == sorted(prune_option_names() + ["name"]), "regenerate roles/retention/vars/main.yml"


def test_retention_role_passes_every_registry_prune_option() -> None:
    (task,) = yaml.safe_load((ROOT / "roles/retention/tasks/prune.yml").read_text())
    passed = sorted(task["ocireg.registry.registry_prune"])
    assert passed == prune_option_names()


def test_promote_role_validates_promotion_keys_with_its_argument_spec() -> None:
    """roles/promote's argument spec lists a promotion's keys; each must be a registry_tag option it passes."""
    spec = yaml.safe_load((ROOT / "roles/promote/meta/argument_specs.yml").read_text())
    keys = set(spec["argument_specs"]["main"]["options"]["registry_promotions"]["options"])
    tasks = yaml.safe_load((ROOT / "roles/promote/tasks/promote_one.yml").read_text())
    passed = set(tasks[0]["ocireg.registry.registry_tag"])
    assert keys == passed


if __name__ == "__main__":
    import sys
    sys.path.insert(0, str(ROOT / "tests"))
    # Importing conftest makes ansible_collections.ocireg.registry importable.
    import conftest  # noqa: F401  # pylint: disable=unused-import
    print("retention_policy_keys:\n" + "".join(f"  - {k}\n" for k in sorted(prune_option_names() + ["name"])))
