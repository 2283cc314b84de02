#!/usr/bin/python
# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: registry_manifest_info
short_description: Read facts about images in an OCI or Docker registry
version_added: 0.1.0
description:
  - Reads what a tag or digest points to in any registry that speaks the OCI Distribution API
    (Docker Hub, Harbor, GHCR, Quay, ECR, GAR, ACR, Distribution, Zot...) without a Docker daemon.
  - Returns the manifest's digest, media type and size; for a multi-platform image (OCI index or
    Docker manifest list) the children and their platforms.
  - On request (O(include)) also the image config (architecture, OS, creation time, labels,
    environment, entrypoint...), the layers, the referrers (signatures, SBOMs, attestations), the
    repository's tags and the raw manifest text.
  - A tag, digest or repository that does not exist gives RV(exists=false); it is not a failure.
    Authentication, permission, TLS and network errors still fail, with a message saying what to fix.
options:
  reference:
    description:
      - The image to describe, C(host/repository:tag) or C(host/repository@sha256:...).
      - Without a host the image is on Docker Hub; without a tag or digest, C(latest) is used.
      - Exactly one of O(reference) and O(references) is required.
    type: str
  references:
    description:
      - Several images to describe, fetched concurrently (at most O(max_concurrency) at a time).
      - The module then returns RV(results), one entry per reference in the same order, each
        with the keys a single O(reference) returns.
      - The references may be in different registries; the connection options apply to all of them.
    type: list
    elements: str
  platform:
    description:
      - For a multi-platform image, describe the child image for this platform, C(os/arch[/variant])
        such as C(linux/amd64) or C(linux/arm64/v8). C(linux/arm64) matches C(linux/arm64/v8).
      - The result then describes the child; RV(index_digest) is the digest of the index it was picked from.
      - If the index has no image for the platform, the module fails and lists the platforms it has.
      - A single-platform image is described as it is; its platform is in RV(config) when
        O(include) contains V(config).
    type: str
  include:
    description:
      - Extra facts to read, each costing more requests.
      - V(config) reads the image config blob (RV(config)).
      - V(layers) lists the layers (RV(layers), RV(total_size)); no extra request.
      - V(referrers) lists manifests whose subject is this one (RV(referrers)), with the referrers
        API or, where the registry lacks it, the C(sha256-<hex>) tag fallback.
      - V(tags) lists the repository's tags (RV(tags)).
      - V(raw) returns the manifest exactly as the registry sent it (RV(raw)).
    type: list
    elements: str
    choices: [config, layers, referrers, tags, raw]
    default: []
  max_concurrency:
    description:
      - How many references of O(references) are read at the same time (1 to 64).
    type: int
    default: 8
extends_documentation_fragment:
  - ocireg.registry.registry
  - ocireg.registry.registry.action_group
attributes:
  check_mode:
    support: full
    description: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description: The module changes nothing, so there is nothing to diff.
author:
  - ocireg.registry contributors (@ocireg)
seealso:
  - plugin: ocireg.registry.registry
    plugin_type: lookup
    description: The same facts inline in templates.
  - module: ocireg.registry.registry_tag
    description: Point tags at the digest found here.
  - module: ocireg.registry.registry_copy
    description: Copy an image to another repository or registry.
notes:
  - The action group C(ocireg.registry.registry) lets you set the connection options once
    in C(module_defaults).
  - RV(size) and RV(total_size) are stored (compressed) sizes, as the registry reports them.
"""

EXAMPLES = r"""
- name: Which digest does prod point to?
  ocireg.registry.registry_manifest_info:
    reference: registry.example.com/team/app:prod
    username: ci
    password: "{{ registry_password }}"
  register: prod

- name: Deploy exactly that image
  ansible.builtin.debug:
    msg: "registry.example.com/team/app@{{ prod.digest }}"
  when: prod.exists

- name: Labels and creation time of the arm64 image of a multi-platform tag
  ocireg.registry.registry_manifest_info:
    reference: docker.io/library/alpine:3.20
    platform: linux/arm64
    include: [config, layers]
  register: alpine

- name: Show what was found
  ansible.builtin.debug:
    msg: >-
      {{ alpine.config.created }} {{ alpine.config.labels }}
      {{ alpine.layers | length }} layers, {{ alpine.total_size }} bytes,
      picked from index {{ alpine.index_digest }}

- name: Fail early when a release is missing
  ocireg.registry.registry_manifest_info:
    reference: registry.example.com/team/app:{{ release }}
  register: release_image
  failed_when: not release_image.exists

- name: Signatures and SBOMs attached to an image
  ocireg.registry.registry_manifest_info:
    reference: registry.example.com/team/app@sha256:4f2c...
    include: [referrers]
  register: attached

- name: Describe many images at once (4 at a time)
  ocireg.registry.registry_manifest_info:
    references:
      - registry.example.com/team/app:1.0
      - registry.example.com/team/app:1.1
      - registry.example.com/team/worker:1.1
    max_concurrency: 4
  register: many

- name: Digests of all of them
  ansible.builtin.debug:
    msg: "{{ many.results | items2dict(key_name='reference', value_name='digest') }}"
"""

RETURN = r"""
reference:
  description: The reference described, in canonical form (host included, C(library/) added on Docker Hub).
  returned: success, when O(reference) is set
  type: str
  sample: registry.example.com/team/app:prod
exists:
  description:
    - Whether the tag or digest exists.
    - V(false) when the tag, the digest or the whole repository is unknown to the registry;
      every other key is then empty (V(null), V([]) or V({})).
  returned: success, when O(reference) is set
  type: bool
  sample: true
digest:
  description: Digest of the manifest described (of the platform's child when O(platform) picked one).
  returned: success, when O(reference) is set
  type: str
  sample: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
media_type:
  description: Media type of the manifest.
  returned: success, when O(reference) is set
  type: str
  sample: application/vnd.oci.image.index.v1+json
size:
  description: Size of the manifest in bytes.
  returned: success, when O(reference) is set
  type: int
  sample: 1609
schema_version:
  description: The manifest's C(schemaVersion) (2; 1 for the deprecated Docker schema 1).
  returned: success, when O(reference) is set
  type: int
  sample: 2
manifests:
  description: The children of an index or manifest list; empty for a single image.
  returned: success, when O(reference) is set
  type: list
  elements: dict
  contains:
    digest:
      description: Digest of the child manifest.
      type: str
      sample: sha256:5e3e1e0c4f3c1a0b8bcaa1ad6d8e1bff4e13a1b0f0e5a5c0e9c6f0c2b3b8b1a2
    media_type:
      description: Media type of the child manifest.
      type: str
      sample: application/vnd.oci.image.manifest.v1+json
    size:
      description: Size of the child manifest in bytes.
      type: int
      sample: 1013
    platform:
      description: C(os/arch[/variant]) of the child, V(null) when the index does not say (attestations).
      type: str
      sample: linux/arm64/v8
    annotations:
      description: Annotations of the child's descriptor.
      type: dict
      sample: {}
    artifact_type:
      description: C(artifactType) of the child's descriptor, if any.
      type: str
      sample: null
platforms:
  description:
    - The platforms of the image, C(os/arch[/variant]), in index order.
    - For an index, the platforms of its children. With O(platform), the platform picked.
      For a single image, its platform when O(include) contains V(config), else empty.
  returned: success, when O(reference) is set
  type: list
  elements: str
  sample: [linux/amd64, linux/arm64/v8]
annotations:
  description: The manifest's annotations.
  returned: success, when O(reference) is set
  type: dict
  sample: {org.opencontainers.image.source: https://example.com/app.git}
artifact_type:
  description: The manifest's C(artifactType) (OCI 1.1 artifacts), else V(null).
  returned: success, when O(reference) is set
  type: str
  sample: application/vnd.example.sbom.v1+json
subject:
  description: The manifest this one refers to (OCI 1.1 C(subject)), else V(null).
  returned: success, when O(reference) is set
  type: dict
  contains:
    digest:
      description: Digest of the subject.
      type: str
    media_type:
      description: Media type of the subject.
      type: str
    size:
      description: Size of the subject manifest in bytes.
      type: int
  sample: {digest: "sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb",
           media_type: application/vnd.oci.image.manifest.v1+json, size: 1013}
index_digest:
  description: Digest of the index O(platform) picked the child from; V(null) when no child was picked.
  returned: success, when O(reference) is set
  type: str
  sample: sha256:0c3f4ec8a1c2d7e6a4ed5d3a1b7b3c1e6c2b5d8a4f7e0b9c3d6a1f2e5b8c7d4a
config:
  description:
    - Facts from the image config blob. V(null) for an index (use O(platform)), an artifact
      whose config is not an image config, or a Docker schema 1 manifest.
  returned: when O(include) contains V(config)
  type: dict
  contains:
    digest:
      description: Digest of the config blob (the image ID Docker shows).
      type: str
    architecture:
      description: CPU architecture.
      type: str
      sample: amd64
    os:
      description: Operating system.
      type: str
      sample: linux
    variant:
      description: CPU variant, if any.
      type: str
      sample: v8
    created:
      description: Creation time as written in the config (RFC 3339), if any.
      type: str
      sample: "2024-01-01T00:00:00Z"
    labels:
      description: Image labels.
      type: dict
      sample: {org.opencontainers.image.version: "1.2.3"}
    env:
      description: Environment, C(NAME=value) strings.
      type: list
      elements: str
    entrypoint:
      description: Entrypoint, or V(null) when unset.
      type: list
      elements: str
    cmd:
      description: Default command, or V(null) when unset.
      type: list
      elements: str
    user:
      description: User the container runs as, if set.
      type: str
    working_dir:
      description: Working directory, if set.
      type: str
    exposed_ports:
      description: Exposed ports such as C(80/tcp), sorted.
      type: list
      elements: str
    history_length:
      description: Number of history entries (build steps), the v1 "ancestry" depth.
      type: int
layers:
  description: The layers of an image manifest in order (empty for an index).
  returned: when O(include) contains V(layers)
  type: list
  elements: dict
  contains:
    digest:
      description: Digest of the layer blob.
      type: str
    size:
      description: Size of the layer blob in bytes (compressed).
      type: int
    media_type:
      description: Media type of the layer.
      type: str
total_size:
  description: Sum of the layer sizes in bytes (compressed, as stored).
  returned: when O(include) contains V(layers)
  type: int
  sample: 3623807
referrers:
  description: Manifests whose C(subject) is the described manifest (signatures, SBOMs, attestations).
  returned: when O(include) contains V(referrers)
  type: list
  elements: dict
  contains:
    digest:
      description: Digest of the referrer.
      type: str
    media_type:
      description: Media type of the referrer.
      type: str
    size:
      description: Size of the referrer manifest in bytes.
      type: int
    artifact_type:
      description: Artifact type of the referrer.
      type: str
    annotations:
      description: Annotations of the referrer.
      type: dict
tags:
  description: Every tag of the repository, sorted; empty when the repository does not exist.
  returned: when O(include) contains V(tags)
  type: list
  elements: str
  sample: ["1.0", "1.1", latest]
raw:
  description: The manifest text exactly as the registry sent it.
  returned: when O(include) contains V(raw)
  type: str
results:
  description:
    - One result per entry of O(references), in the same order, each with the keys above
      (RV(reference), RV(exists), RV(digest)...).
  returned: success, when O(references) is set
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    RegistryTask,
    connection_argument_spec,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.describe import (
    describe_many,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.options import (
    INCLUDE_CHOICES,
    check_platform,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    DEFAULT_MAX_CONCURRENCY,
    check_concurrency,
)


def main() -> None:
    """Describe one reference or many and exit with the facts."""
    module = AnsibleModule(
        argument_spec={
            "reference": {"type": "str"},
            "references": {"type": "list", "elements": "str"},
            "platform": {"type": "str"},
            "include": {"type": "list", "elements": "str", "choices": list(INCLUDE_CHOICES), "default": []},
            "max_concurrency": {"type": "int", "default": DEFAULT_MAX_CONCURRENCY},
            **connection_argument_spec(),
        },
        mutually_exclusive=[("reference", "references")],
        required_one_of=[("reference", "references")],
        supports_check_mode=True,
    )
    task = RegistryTask(module)
    factory = task.factory
    params = module.params
    with task.errors():
        # Everything the user typed is checked before the first request.
        texts = [params["reference"]] if params["reference"] is not None else params["references"]
        references = [Reference.parse(text) for text in texts]
        platform = check_platform(params["platform"])
        workers = check_concurrency(params["max_concurrency"])
        factory.bind_reads(ref.registry for ref in references)
        targets = [(factory.repository(ref), ref) for ref in references]
        results = describe_many(targets, platform, params["include"], workers)
    if params["reference"] is not None:
        task.exit({"changed": False, **results[0]})
    task.exit({"changed": False, "results": results})


if __name__ == "__main__":
    main()
