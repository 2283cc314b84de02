#!/usr/bin/python
# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: registry_unpack
short_description: Write an image's filesystem, or chosen paths of it, into a directory on the host
version_added: 1.0.0
description:
  - Reads an image from a registry and writes its flattened filesystem into O(dest), without a container
    runtime; layers are applied in order with OCI whiteouts (C(.wh.) files and opaque directories), hard links,
    symlinks and modes.
  - For a multi-platform index one platform is unpacked, O(platform) or the host's.
  - Nothing is written outside O(dest). Absolute names and C(..) are refused; a relative symlink climbing
    above the image root is refused; a hard link must point at a file of the image; an entry under a symlinked
    directory (made by an earlier layer) is resolved inside O(dest), as a container would, never outside.
    Device nodes need O(allow_devices); setuid and setgid bits are dropped unless O(allow_setuid).
    O(max_entries) and O(max_bytes) stop decompression bombs.
  - The tree is built in a temporary directory next to O(dest) and renamed into place when complete, so a
    failure never leaves a partial tree at O(dest).
  - O(dest) holds the image's filesystem and nothing else. The module's own state (the digest and O(paths)
    unpacked) is the file C(.<name>.ocireg-unpack.json) beside O(dest), in its parent directory; a second run
    for the same digest and O(paths) changes nothing.
  - An artifact (a manifest with an C(artifactType) or a non-image config, such as files pushed by oras or
    M(ocireg.registry.registry_artifact)) is refused with a message saying so; pull its files with
    M(ocireg.registry.registry_artifact).
options:
  reference:
    description: The image, C(host/repository:tag) or C(host/repository@sha256:...).
    type: str
    required: true
  dest:
    description:
      - The directory to write the filesystem into. It must not exist, be empty, or hold a tree this module
        unpacked before (it is then replaced when the digest differs); anything else needs O(force).
      - Missing parent directories are created with the default permissions (C(0777) less the umask), as
        M(ocireg.registry.registry_artifact) does for its O(ocireg.registry.registry_artifact#module:dest).
    type: path
    required: true
  platform:
    description: For a multi-platform index, the platform to unpack, C(os/arch[/variant]); default the host's.
    type: str
  paths:
    description:
      - Only these paths of the image (files or directories, absolute inside the image such as C(/usr/bin/tool))
        and the directories leading to them. Default the whole filesystem.
      - A hard link is written only when its target is selected too.
    type: list
    elements: str
  force:
    description: Replace a non-empty O(dest) that this module did not unpack.
    type: bool
    default: false
  allow_devices:
    description: Create device nodes found in the image (needs root). Without it an image with one fails.
    type: bool
    default: false
  allow_setuid:
    description: Keep setuid and setgid bits. Without it they are dropped and listed in RV(dropped_bits).
    type: bool
    default: false
  max_entries:
    description: The most tar entries, over all layers, before the module stops and fails.
    type: int
    default: 1000000
  max_bytes:
    description: The most bytes of file content, over all layers, before the module stops and fails.
    type: int
    default: 17179869184
extends_documentation_fragment:
  - ocireg.registry.registry
  - ocireg.registry.registry.action_group
attributes:
  check_mode:
    support: full
    description: Reads the image's manifests and the state beside O(dest); downloads no layer and writes nothing.
  diff_mode:
    support: full
    description: Shows the digest and the O(paths) unpacked in O(dest) before and after (C(/) for the whole filesystem).
author:
  - ocireg.registry contributors (@ocireg)
seealso:
  - module: ocireg.registry.registry_artifact
    description: Push and pull plain files as artifacts.
notes:
  - Files belong to the user running the task; owners recorded in the image are not applied.
  - Absolute symlink targets (C(/usr/share/zoneinfo/UTC)) are written as they are; they mean "from the image root"
    and, followed from the host, point into the host's filesystem. The module itself never follows them.
  - Layers compressed with zstd are not supported yet.
"""

EXAMPLES = r"""
- name: Install a binary from an image onto the host
  ocireg.registry.registry_unpack:
    reference: registry.example.com/tools/cli:2.3.1
    paths: [/usr/local/bin/cli]
    dest: /opt/cli-2.3.1

- name: Unpack the arm64 filesystem of a multi-platform image
  ocireg.registry.registry_unpack:
    reference: registry.example.com/base/debian:bookworm
    platform: linux/arm64
    dest: /srv/rootfs/debian-arm64
"""

RETURN = r"""
digest:
  description: The digest of the image manifest unpacked (the platform's, for an index).
  returned: success
  type: str
  sample: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
platform:
  description: The platform picked from an index; V(null) for a single-image manifest.
  returned: success
  type: str
dest:
  description: The absolute path of the destination.
  returned: success
  type: str
layers:
  description: How many layers the image has.
  returned: success
  type: int
entries:
  description: Tar entries read (0 when nothing was unpacked).
  returned: success
  type: int
bytes:
  description: Bytes of file content read (0 when nothing was unpacked).
  returned: success
  type: int
dropped_bits:
  description: Files whose setuid / setgid bits were dropped, C(path) and C(bits).
  returned: success
  type: list
  elements: dict
before:
  description: The digest unpacked in O(dest) before the task, V(null) when none.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocireg.registry.plugins.module_utils._glue.limits import (
    limits_argument_spec,
    limits_from,
)
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    RegistryTask,
    connection_argument_spec,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.unpack.apply import (
    unpack_image,
)


def main() -> None:
    """Unpack one image and exit with its digest, counts and the diff."""
    module = AnsibleModule(
        argument_spec={
            "reference": {"type": "str", "required": True},
            "dest": {"type": "path", "required": True},
            "platform": {"type": "str"},
            "paths": {"type": "list", "elements": "str"},
            "force": {"type": "bool", "default": False},
            "allow_devices": {"type": "bool", "default": False},
            "allow_setuid": {"type": "bool", "default": False},
            **limits_argument_spec(),
            **connection_argument_spec(),
        },
        supports_check_mode=True,
    )
    task = RegistryTask(module)
    factory = task.factory
    params = module.params
    with task.errors():
        reference = Reference.parse(params["reference"])
        repository = factory.repository(reference)
        limits = limits_from(params, allow_devices=params["allow_devices"], allow_setuid=params["allow_setuid"])
        result = unpack_image(repository, reference.digest or reference.tag or "latest", params["dest"],
                              platform=params["platform"], paths=params["paths"], limits=limits,
                              check_mode=module.check_mode, force=params["force"], name=params["reference"])
    for item in result["dropped_bits"]:
        task.warn(f"dropped {item['bits']} from {item['path']} (set allow_setuid=true to keep them)")
    task.exit(result)


if __name__ == "__main__":
    main()
