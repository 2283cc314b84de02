"""Each module imports only what its runs need: what a module file loads is paid by every task before its first request.

Each check imports one module in a fresh interpreter (the import state of this test process says nothing)
and lists what got loaded. What must stay out: the copy engine where nothing is copied, the archive stores
(and ``tarfile``) where no archive is named, signature verification and ``cryptography`` unless ``verify``
is set (``_glue.module.verifier`` imports them then), unpacking and artifacts outside their own modules.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.conftest import COLLECTIONS_PATH

UTILS = "ansible_collections.ocireg.registry.plugins.module_utils."
COPY_ENGINE = UTILS + "_ops.copying.image"
ARCHIVES = (UTILS + "_ops.copying.local.archive", UTILS + "_ops.copying.local.docker_archive", "tarfile")
VERIFY = (UTILS + "_ops.verify.check", UTILS + "_ops.verify.signatures", "cryptography")
UNPACK = (UTILS + "_ops.unpack.apply",)
ARTIFACT = (UTILS + "_ops.artifact.pack", UTILS + "_ops.artifact.transfer")

NOT_LOADED = {
    "registry_manifest_info": (COPY_ENGINE, UTILS + "_ops.sync.run", UTILS + "_ops.retention.prune",
                               *ARCHIVES, *VERIFY, *UNPACK, *ARTIFACT),
    "registry_tag": (COPY_ENGINE, UTILS + "_ops.sync.run", *ARCHIVES, *VERIFY, *UNPACK, *ARTIFACT),
    "registry_copy": (*ARCHIVES, *VERIFY, *UNPACK, *ARTIFACT, UTILS + "_ops.retention.prune"),
    "registry_prune": (COPY_ENGINE, *ARCHIVES, *VERIFY, *UNPACK, *ARTIFACT),
    "registry_unpack": (COPY_ENGINE, *VERIFY, *ARTIFACT),
    "registry_artifact": (COPY_ENGINE, *VERIFY),
}


def loaded_by(module: str) -> set[str]:
    """The names in ``sys.modules`` after importing ``module`` in a fresh interpreter."""
    code = (f"import json, sys; import ansible_collections.ocireg.registry.plugins.modules.{module}; "
            "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(COLLECTIONS_PATH), "PATH": "/usr/bin:/bin"})
    return set(json.loads(proc.stdout))


@pytest.mark.parametrize("module", sorted(NOT_LOADED))
def test_a_module_does_not_import_what_its_runs_do_not_need(module: str) -> None:
    loaded = loaded_by(module)
    assert f"ansible_collections.ocireg.registry.plugins.modules.{module}" in loaded  # the check saw the import
    assert sorted(name for name in NOT_LOADED[module] if name in loaded) == []


def test_the_check_sees_what_a_module_does_import() -> None:
    # The same check finds the copy engine where it is needed: an empty answer above is not blindness.
    loaded = loaded_by("registry_copy")
    assert COPY_ENGINE in loaded
    assert UTILS + "_glue.module" in loaded
