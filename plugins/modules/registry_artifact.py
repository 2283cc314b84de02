#!/usr/bin/python
# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: registry_artifact
short_description: Push and pull files as OCI artifacts, attach them to images, move single blobs
version_added: 1.0.0
description:
  - Pushes local files as an OCI artifact the way C(oras) does, so C(oras) and other tools read it, and pulls
    an artifact's files into a directory on the host. No container runtime and no C(oras) binary are needed.
  - O(action=push) makes one layer per file, titled with its name (C(org.opencontainers.image.title)). A
    directory becomes one reproducible tar+gzip layer (sorted entries, fixed times and owners), so the same
    files give the same digest and a second run changes nothing.
  - With O(subject) the artifact is attached to an image as a referrer (OCI 1.1 C(subject)); on registries
    without the referrers API the tag-schema fallback index is kept up to date.
  - O(action=pull) writes each titled layer under O(dest), verified while streaming; a file already holding
    the same digest is not rewritten. Names that would leave O(dest) are refused.
  - O(action=push_blob) and O(action=pull_blob) move one blob between a file and the registry.
options:
  reference:
    description:
      - C(host/repository:tag) or C(host/repository@sha256:...).
      - For O(action=push), the tag to push to; with O(subject) the tag may be left out (C(host/repository)), then
        the artifact is stored by digest only and found through its subject.
      - For O(action=pull), the artifact to pull; with O(subject) give C(host/repository) only.
      - For O(action=push_blob) and O(action=pull_blob), C(host/repository) (a digest in it is the blob for
        O(action=pull_blob)).
    type: str
    required: true
  action:
    description:
      - V(push) files as an artifact, V(pull) an artifact's files, V(push_blob) one file as a blob, V(pull_blob) one
        blob to a file.
    type: str
    choices: [push, pull, push_blob, pull_blob]
    default: push
  files:
    description:
      - What to push (O(action=push)). Each item is a path, or a dict with C(path) and optional C(title)
        (the name on pull, default the base name), C(media_type) (default
        C(application/vnd.oci.image.layer.v1.tar), what C(oras) uses) and C(annotations).
      - A directory is packed as C(application/vnd.oci.image.layer.v1.tar+gzip) with the C(oras) annotation
        C(io.deis.oras.content.unpack), and unpacked again on pull.
    type: list
    elements: raw
  artifact_type:
    description:
      - The artifact type (O(action=push)), for example C(application/spdx+json). Without it and without
        O(config), C(application/vnd.unknown.artifact.v1) (as C(oras) does).
      - With O(action=pull) and O(subject), the type of referrer to pull.
    type: str
  annotations:
    description: Manifest annotations (O(action=push)). No creation time is added, to keep pushes idempotent.
    type: dict
  config:
    description:
      - An optional config blob (O(action=push)), a dict with C(path) and C(media_type); the empty config
        C({}) otherwise.
    type: dict
  subject:
    description:
      - The image the artifact belongs to, C(:tag), C(@sha256:...) or a full reference in the same repository.
      - O(action=push) attaches the artifact to it. O(action=pull) pulls its newest referrer of O(artifact_type)
        (newest by C(org.opencontainers.image.created), else the last listed).
    type: str
  dest:
    description:
      - O(action=pull), the directory to write the files into (created if missing).
      - O(action=pull_blob), the file to write.
    type: path
  src:
    description: O(action=push_blob), the file to upload.
    type: path
  digest:
    description: O(action=pull_blob), the digest of the blob (instead of a digest in O(reference)).
    type: str
  max_entries:
    description: For directories on pull, the most tar entries one directory layer may hold.
    type: int
    default: 1000000
  max_bytes:
    description: For directories on pull, the most bytes one directory layer may expand to.
    type: int
    default: 17179869184
extends_documentation_fragment:
  - ocireg.registry.registry
  - ocireg.registry.registry.action_group
attributes:
  check_mode:
    support: full
    description: Reads the registry and the files and reports what would change; writes nothing anywhere.
  diff_mode:
    support: full
    description: Shows the tag's digest (push) or each file's digest (pull) before and after.
author:
  - ocireg.registry contributors (@ocireg)
seealso:
  - module: ocireg.registry.registry_unpack
    description: Write an image's filesystem onto the host.
notes:
  - The artifact lookup C(ocireg.registry.registry) does not read artifact files; see the guide
    C(docs/guide_files.md) for why, and pull the file with this module instead.
  - A directory pushed by the C(oras) Python package has no unpack annotation; it is pulled as the tar+gzip file
    it is stored as, as the C(oras) command line would.
"""

EXAMPLES = r"""
- name: Ship a configuration bundle
  ocireg.registry.registry_artifact:
    reference: registry.example.com/team/config:v3
    artifact_type: application/vnd.example.config.v1
    files:
      - files/app.yaml
      - path: files/certs
        title: certs

- name: Attach an SBOM to the image it describes
  ocireg.registry.registry_artifact:
    reference: registry.example.com/team/app
    subject: ":1.4.0"
    artifact_type: application/spdx+json
    files:
      - path: sbom.spdx.json
        media_type: application/spdx+json

- name: Fetch the newest SBOM of an image
  ocireg.registry.registry_artifact:
    action: pull
    reference: registry.example.com/team/app
    subject: ":1.4.0"
    artifact_type: application/spdx+json
    dest: /srv/sbom

- name: Download one layer by digest
  ocireg.registry.registry_artifact:
    action: pull_blob
    reference: registry.example.com/team/app@sha256:4f2c6b0a0c1e8d3f3a1c2b9e8f7d6c5b4a3928171615141312111009080706a5
    dest: /tmp/layer.tar.gz
"""

RETURN = r"""
digest:
  description: The artifact manifest's digest (push, pull) or the blob's digest (push_blob, pull_blob).
  returned: success
  type: str
  sample: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
subject:
  description: The subject's digest when O(subject) was given (push).
  returned: success
  type: str
layers:
  description: The layer descriptors pushed (push).
  returned: success
  type: list
  elements: dict
pushed_blobs:
  description: Digests of blobs uploaded (push); empty when the registry had them all.
  returned: success
  type: list
  elements: str
files:
  description: Per file of a pull, C(name), C(path), C(digest), C(size), C(directory) and C(changed).
  returned: success
  type: list
  elements: dict
skipped_layers:
  description: Digests of layers without a title, not written (pull).
  returned: success
  type: list
  elements: str
size:
  description: The blob's size (push_blob, pull_blob).
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocireg.registry.plugins.module_utils._glue.limits import (
    limits_argument_spec,
    limits_from,
)
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    RegistryTask,
    connection_argument_spec,
    tag_diff,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.artifact.transfer import (
    FileSpec,
    find_artifact,
    pull_artifact,
    pull_blob_file,
    push_artifact,
    push_blob_file,
)


def file_specs(items: list) -> list[FileSpec]:
    """``files`` items (a path or a dict) as :class:`FileSpec`; one clear line for a bad item."""
    specs = []
    for item in items or []:
        if isinstance(item, str):
            specs.append(FileSpec(item))
        elif isinstance(item, dict) and isinstance(item.get("path"), str):
            unknown = set(item) - {"path", "title", "media_type", "annotations"}
            if unknown:
                raise InvalidInputError(f"files item {item['path']!r} has unknown keys {sorted(unknown)}; use path, "
                                        "title, media_type, annotations")
            specs.append(FileSpec(item["path"], item.get("title"), item.get("media_type"),
                                  {str(k): str(v) for k, v in (item.get("annotations") or {}).items()}))
        else:
            raise InvalidInputError(f"files item {item!r} is neither a path nor a dict with a path")
    return specs


def relative(reference: Reference, text: str | None) -> str | None:
    """``subject`` as a tag or digest of ``reference``'s repository (it must be the same repository)."""
    if text is None:
        return None
    subject = Reference.parse_relative(text, reference)
    if (subject.registry, subject.repository) != (reference.registry, reference.repository):
        raise InvalidInputError(f"subject {text} is in another repository; referrers live in their subject's "
                                "repository, so push the artifact there")
    return subject.digest or subject.tag


def main() -> None:
    """Run one artifact action and exit with digests and the diff."""
    module = AnsibleModule(
        argument_spec={
            "reference": {"type": "str", "required": True},
            "action": {"type": "str", "choices": ["push", "pull", "push_blob", "pull_blob"], "default": "push"},
            "files": {"type": "list", "elements": "raw"},
            "artifact_type": {"type": "str"},
            "annotations": {"type": "dict"},
            "config": {"type": "dict"},
            "subject": {"type": "str"},
            "dest": {"type": "path"},
            "src": {"type": "path"},
            "digest": {"type": "str"},
            **limits_argument_spec(),
            **connection_argument_spec(),
        },
        required_if=[("action", "pull", ("dest",)), ("action", "pull_blob", ("dest",)),
                     ("action", "push_blob", ("src",)), ("action", "push", ("files",))],
        supports_check_mode=True,
    )
    task = RegistryTask(module)
    factory = task.factory
    params = module.params
    action = params["action"]
    with task.errors():
        reference = Reference.parse(params["reference"])
        repository = factory.repository(reference)
        subject = relative(reference, params["subject"])
        if action == "push":
            config = None
            if params["config"]:
                if not isinstance(params["config"].get("path"), str):
                    raise InvalidInputError("config needs a path (and a media_type)")
                config = FileSpec(params["config"]["path"], media_type=params["config"].get("media_type"))
            if reference.digest:
                raise InvalidInputError("push to a tag (host/repository:tag), or with subject to host/repository")
            if reference.tag is None and subject is None:
                raise InvalidInputError("reference needs a tag to push to (or give subject to push by digest)")
            annotations = {str(k): str(v) for k, v in (params["annotations"] or {}).items()}
            result = push_artifact(repository, reference.tag, file_specs(params["files"]),
                                   artifact_type=params["artifact_type"], config=config, annotations=annotations,
                                   subject=subject, check_mode=module.check_mode)
            name = reference.tag or result["digest"]
            result["diff"] = tag_diff({name: result["before"] if reference.tag else None},
                                      {name: result["digest"]})
        elif action == "pull":
            target = find_artifact(repository, reference.digest or reference.tag, subject, params["artifact_type"])
            result = pull_artifact(repository, target, params["dest"], limits=limits_from(params),
                                   check_mode=module.check_mode)
            result["diff"] = {
                "before": {f["name"]: (f["digest"] if not f["changed"] else "other or absent") for f in result["files"]},
                "after": {f["name"]: f["digest"] for f in result["files"]},
            }
        elif action == "push_blob":
            result = push_blob_file(repository, params["src"], check_mode=module.check_mode)
        else:
            digest = params["digest"] or reference.digest
            if not digest:
                raise InvalidInputError("pull_blob needs the blob's digest: in reference (@sha256:...) or digest")
            result = pull_blob_file(repository, digest, params["dest"], check_mode=module.check_mode)
    task.exit(result)


if __name__ == "__main__":
    main()
