"""The demo: a throwaway local registry and the collection's main job against it.

1. builds the collection and installs it into a temp collections path;
2. starts CNCF Distribution on 127.0.0.1 (a free port, temp storage);
3. seeds it with raw HTTP (not with the collection's own client): a
   single-arch app image in three versions, a multi-arch base image, and a
   cosign-style signature;
4. runs playbooks/demo.yml with real ansible-playbook: promotion with
   --check --diff and then for real, manifest facts, the lookup in a template,
   a copy between two repositories, a prune plan and the prune;
5. stops the registry and removes everything it made.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.rig.images import RawPusher, cosign_tag, make_cosign_signature, make_image, make_multiarch  # noqa: E402
from tests.rig.playbook import build_and_install, hermetic_env  # noqa: E402
from tests.rig.registry_server import RegistryServer  # noqa: E402


def seed(server: RegistryServer) -> None:
    """Push the demo images with raw HTTP."""
    pusher = RawPusher(server.url)
    for version, created in (("1.0", "2021-03-01T10:00:00Z"), ("1.1", "2024-06-01T10:00:00Z"),
                             ("1.2", "2026-11-01T10:00:00Z")):
        image = make_image(f"demo-app-{version}", layers=2, layer_size=64 * 1024, created=created,
                           labels={"org.opencontainers.image.version": version,
                                   "org.opencontainers.image.created": created})
        pusher.push("demo/app", image, tag=version)
        if version == "1.2":
            pusher.push("demo/app", image, tag="staging")
            signature = make_cosign_signature(image)
            pusher.push("demo/app", signature, tag=cosign_tag(image))
        if version == "1.1":
            pusher.push("demo/app", image, tag="prod")
    base = make_multiarch("demo-base", ("linux/amd64", "linux/arm64/v8", "linux/arm/v7"))
    pusher.push("demo/base", base, tag="3.20")
    print(f"seeded {server.host}: demo/app 1.0 1.1(prod) 1.2(staging, signed), demo/base:3.20 (3 platforms)")


def main() -> int:
    """Run the demo; returns ansible-playbook's exit code."""
    with tempfile.TemporaryDirectory(prefix="ocireg-demo-") as tmp:
        work = Path(tmp)
        print("building and installing the collection ...")
        collection = build_and_install(work)
        with RegistryServer() as server:
            print(f"registry: {server.url} (CNCF Distribution, throwaway)")
            seed(server)
            env = hermetic_env(work, ANSIBLE_COLLECTIONS_PATH=str(collection.collections_path))
            env["ANSIBLE_STDOUT_CALLBACK"] = "default"
            env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "yaml"
            env["ANSIBLE_DISPLAY_SKIPPED_HOSTS"] = "false"
            cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                   "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"demo_registry={server.host}",
                   str(ROOT / "playbooks" / "demo.yml")]
            rc = subprocess.run(cmd, env=env, check=False).returncode
        print("registry stopped and removed")
        return rc


if __name__ == "__main__":
    sys.exit(main())
