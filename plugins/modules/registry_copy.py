#!/usr/bin/python
# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: registry_copy
short_description: Copy or mirror images between OCI and Docker registries, byte for byte
version_added: 0.1.0
description:
  - Copies an image (single-platform or multi-platform), an artifact, and optionally its referrers
    (signatures, SBOMs, attestations) from one repository to another, in the same registry or across
    registries, over the Distribution HTTP API. No Docker daemon, no skopeo, no temporary files.
  - The copy is byte-exact, so digests do not change; every manifest and blob is verified against its
    digest while it streams, and the destination tag is written last, only once everything it points
    to is there. A failed copy never leaves a tag pointing at an incomplete image.
  - Blobs the destination already has are skipped; within one registry they are mounted from the
    source repository instead of transferred; otherwise each blob streams from the source straight
    into the destination upload, O(concurrency) at a time, never held whole in memory or on disk.
  - When every destination tag already points at the source digest the module stops after one
    request to each registry and reports no change.
  - With O(tags), O(src) names a repository and every tag matching one of the regular expressions is
    copied to the same tag in O(dest) (a mirror).
options:
  src:
    description:
      - The image to copy, C(host/repository:tag) or C(host/repository@sha256:...).
      - Without a host the image is on Docker Hub; without a tag or digest, C(latest) is copied
        (unless O(tags) is set).
      - With O(tags), a repository without tag or digest.
    type: str
    required: true
  dest:
    description:
      - Where to copy to, C(host/repository[:tag]).
      - When it has no tag, the tag of O(src) is used; when O(src) has no tag either (a copy by
        digest), the image is pushed by digest and no tag is written.
      - A digest is not allowed here, because the digest is always the source's.
      - With O(tags), a repository without tag.
    type: str
    required: true
  platforms:
    description:
      - V([all]) copies a multi-platform image whole, byte-exact.
      - A list of C(os/arch[/variant]) (C(linux/arm64) matches C(linux/arm64/v8)) copies only the
        images of those platforms (and the build attestations of those images).
      - Writing a reduced index changes its digest, so it needs O(allow_index_rewrite). Without it, only
        the platforms' images are copied, by digest, and O(src) must be given by digest with a O(dest)
        without tag; asking for a tag fails before anything is written.
      - Has no effect on a single-platform image (a note says so).
    type: list
    elements: str
    default: [all]
  allow_index_rewrite:
    description:
      - With a O(platforms) subset, write a new index listing only those platforms and tag it.
      - Its digest differs from the source's; RV(digest) is the new one and RV(notes) says so.
    type: bool
    default: false
  referrers:
    description:
      - Also copy the manifests that refer to the copied ones (signatures, SBOMs, attestations),
        recursively, found through the referrers API or its C(sha256-<hex>) tag fallback.
      - At a destination without the referrers API the fallback index is updated (merged), as the
        distribution spec asks.
      - The no-change fast path then also lists the referrers, so a no-op run makes a few more requests.
    type: bool
    default: false
  concurrency:
    description:
      - How many blobs are transferred at the same time (1 to 16).
      - The default was chosen with the benchmark in the collection's C(bench/) directory; each blob
        in flight holds about 2.5 MiB of memory.
    type: int
    default: 8
  tags:
    description:
      - Mirror mode. Regular expressions, each matched against the whole tag; every tag of O(src)
        matching one of them is copied to the same tag in O(dest).
      - With O(referrers), tags of the referrers fallback (C(sha256-<64 hex>)) are left to the
        referrers copy, which merges them, instead of being copied as they are.
    type: list
    elements: str
  keep_going:
    description:
      - Mirror mode. After a tag fails, go on with the next ones; the module still fails at the end
        and reports every failure in RV(failed_tags).
      - When V(false) the mirror stops at the first failure; the tags not tried are in RV(not_attempted).
    type: bool
    default: false
extends_documentation_fragment:
  - ocireg.registry.registry
  - ocireg.registry.registry.src_auth
  - ocireg.registry.registry.dest_auth
  - ocireg.registry.registry.action_group
attributes:
  check_mode:
    support: full
    description:
      - Reads both registries (C(HEAD) and C(GET) only) and reports what would be copied, mounted
        and skipped, with byte counts; writes nothing.
  diff_mode:
    support: full
    description: The destination tags' digests before and after.
author:
  - ocireg.registry contributors (@ocireg)
seealso:
  - module: ocireg.registry.registry_tag
    description: Point tags at a digest, within or across repositories.
  - module: ocireg.registry.registry_manifest_info
    description: Inspect what a tag points to.
notes:
  - The action group C(ocireg.registry.registry) lets you set the connection options once
    in C(module_defaults).
  - A destination tag that already points at the source digest stands for the whole image being
    there, because registries accept a manifest only once everything it references is stored.
  - Non-distributable (foreign) layers that carry URLs are not copied, as skopeo does; RV(notes)
    lists them.
  - Docker schema 1 manifests are copied as they are; registries that re-sign them on every read
    (Distribution does) serve different signatures, with the same digest.
"""

EXAMPLES = r"""
- name: Promote a release to the production registry
  ocireg.registry.registry_copy:
    src: registry.build.example.com/team/app:1.4.2
    dest: registry.prod.example.com/team/app
    src_auth:
      username: ci
      password: "{{ build_registry_password }}"
    dest_auth:
      username: deployer
      password: "{{ prod_registry_password }}"
  register: promoted

- name: Copy an image pinned by digest under a new tag, with its signatures and SBOMs
  ocireg.registry.registry_copy:
    src: registry.example.com/team/app@sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
    dest: registry.example.com/releases/app:stable
    referrers: true

- name: Only the amd64 and arm64 images of a public base image, as a new (smaller) index
  ocireg.registry.registry_copy:
    src: docker.io/library/alpine:3.20
    dest: mirror.example.com/library/alpine:3.20
    platforms: [linux/amd64, linux/arm64]
    allow_index_rewrite: true

- name: Mirror every 1.x release tag, reporting failures per tag
  ocireg.registry.registry_copy:
    src: registry.example.com/team/app
    dest: mirror.example.com/team/app
    tags: ['1\.\d+\.\d+']
    keep_going: true
  register: mirror

- name: What would be transferred?
  ocireg.registry.registry_copy:
    src: registry.example.com/team/app:1.4.2
    dest: registry.example.com/releases/app
  check_mode: true
  register: plan

- name: Show it
  ansible.builtin.debug:
    msg: "{{ plan.copied.blobs }} blobs ({{ plan.copied.bytes }} bytes) to copy, {{ plan.mounted | length }} to mount"
"""

RETURN = r"""
src:
  description: The source, in canonical form.
  returned: always
  type: str
  sample: registry.example.com/team/app:1.4.2
dest:
  description: The destination, in canonical form.
  returned: always
  type: str
  sample: registry.prod.example.com/team/app:1.4.2
digest:
  description:
    - Digest of the manifest copied (the source's, or the new index's with O(allow_index_rewrite)).
  returned: success, without O(tags)
  type: str
  sample: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
media_type:
  description: Media type of that manifest.
  returned: success, without O(tags)
  type: str
  sample: application/vnd.oci.image.index.v1+json
dest_tags:
  description: For each destination tag, the digest it held before and holds after (V(null) when absent).
  returned: success, without O(tags)
  type: dict
  sample: {"1.4.2": {before: null, after: "sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb"}}
copied:
  description: What was transferred (in check mode, what would be); summed over all tags in mirror mode.
  returned: success
  type: dict
  contains:
    manifests:
      description: Manifests pushed.
      type: int
    blobs:
      description: Blobs streamed from source to destination.
      type: int
    bytes:
      description: Bytes of those blobs.
      type: int
  sample: {manifests: 3, blobs: 6, bytes: 31457280}
mounted:
  description: Digests of the blobs mounted from the source repository (same registry) instead of transferred.
  returned: success
  type: list
  elements: str
  sample: []
already_present:
  description:
    - What the destination already had, so was neither transferred nor mounted.
    - Not called C(skipped), because Ansible reads a true C(skipped) key as a skipped task.
  returned: success
  type: dict
  contains:
    manifests:
      description: Manifests already present (one present manifest stands for everything below it).
      type: int
    blobs:
      description: Blobs already present.
      type: int
    bytes:
      description: Bytes of those blobs.
      type: int
  sample: {manifests: 0, blobs: 1, bytes: 2811478}
notes:
  description: Facts worth knowing about the copy (layers left out, index rewritten, check mode...).
  returned: success
  type: list
  elements: str
  sample: ["every destination tag already points at sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb"]
duration:
  description: Seconds the copy took.
  returned: success
  type: float
  sample: 1.234
tag_results:
  description:
    - Mirror mode. One entry per tag copied, with the keys of a single copy plus C(changed),
      C(dest_before) and C(dest_after) (tag to digest).
  returned: success, with O(tags)
  type: dict
  sample:
    "1.0.0":
      digest: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
      media_type: application/vnd.oci.image.manifest.v1+json
      changed: false
      dest_before: {"1.0.0": sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb}
      dest_after: {"1.0.0": sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb}
      copied: {manifests: 0, blobs: 0, bytes: 0}
      mounted: []
      already_present: {manifests: 1, blobs: 0, bytes: 0}
      notes: []
      duration: 0.012
failed_tags:
  description: Mirror mode. The tags that failed, with the error of each.
  returned: with O(tags)
  type: dict
  sample: {"1.0.1": {type: DigestMismatchError, message: "...", status: null, code: null}}
not_attempted:
  description: Mirror mode. Tags not tried because an earlier one failed and O(keep_going) is off.
  returned: with O(tags)
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    connection_argument_spec,
    exit_with,
    new_factory,
    registry_errors,
    scrub,
    side_auth_argument_spec,
    tag_diff,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    DEFAULT_CONCURRENCY,
    CopyOptions,
    copy_image,
    mirror_repository,
)


def destination_tags(src, dest) -> list:
    """The tags to write: the destination's own, else the source's, else none (copy by digest)."""
    if dest.digest is not None:
        raise InvalidInputError(
            f"dest {dest} names a digest: the destination digest is always the source's, so give a "
            "repository, or a repository with a tag")
    if dest.tag is not None:
        return [dest.tag]
    return [src.tag] if src.tag is not None else []


def check_mirror(src, dest) -> None:
    """Mirror mode copies tags to the same tags: both sides must be plain repositories."""
    for side, ref in (("src", src), ("dest", dest)):
        if ref.tag is not None or ref.digest is not None:
            raise InvalidInputError(
                f"with tags (mirror mode) {side} must be a repository without tag or digest, got {ref}; "
                "drop the tags option to copy a single image")


def main() -> None:
    """Copy one image, or mirror the matching tags of a repository."""
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "str", "required": True},
            "dest": {"type": "str", "required": True},
            "src_auth": side_auth_argument_spec(),
            "dest_auth": side_auth_argument_spec(),
            "platforms": {"type": "list", "elements": "str", "default": ["all"]},
            "allow_index_rewrite": {"type": "bool", "default": False},
            "referrers": {"type": "bool", "default": False},
            "concurrency": {"type": "int", "default": DEFAULT_CONCURRENCY},
            "tags": {"type": "list", "elements": "str"},
            "keep_going": {"type": "bool", "default": False},
            **connection_argument_spec(),
        },
        supports_check_mode=True,
    )
    params = module.params
    factory = new_factory(module)
    result: dict = {"changed": False, "src": params["src"], "dest": params["dest"]}
    with registry_errors(module, factory, **result):
        src_ref, dest_ref = Reference.parse(params["src"]), Reference.parse(params["dest"])
        result.update(src=str(src_ref), dest=str(dest_ref))
        options = CopyOptions(
            platforms=tuple(params["platforms"]) if params["platforms"] else None,
            allow_index_rewrite=params["allow_index_rewrite"],
            referrers=params["referrers"],
            concurrency=params["concurrency"],
            check_mode=module.check_mode,
        )
        if params["tags"] is not None:
            check_mirror(src_ref, dest_ref)
        else:
            tags = destination_tags(src_ref, dest_ref)
        factory.bind(dest_ref.registry)  # the top-level credentials are for the registry written to
        src_repo = factory.repository(src_ref, params["src_auth"], side="src")
        dest_repo = factory.repository(dest_ref, params["dest_auth"], side="dest", for_write=not module.check_mode)
        if params["tags"] is not None:
            summary = mirror_repository(src_repo, dest_repo, params["tags"], options, params["keep_going"])
        else:
            copied = copy_image(src_repo, src_ref.identifier, dest_repo, tags, options)
    if params["tags"] is not None:
        finish_mirror(module, factory, result, summary)
    else:
        finish_copy(module, factory, result, copied)


def public_copy(data: dict) -> dict:
    """A copy result as the module returns it.

    Ansible reads a truthy top-level 'skipped' as "task skipped", so the counts
    of what the destination already had go out as 'already_present' (per-tag
    results of a mirror too, so every copy result has the same keys).
    """
    data = dict(data)
    data["already_present"] = data.pop("skipped")
    return data


def finish_copy(module: AnsibleModule, factory, result: dict, copied) -> None:
    """Shape a single copy's result (and its diff) and exit."""
    data = public_copy(copied.to_dict())
    before, after = data.pop("dest_before"), data.pop("dest_after")
    result.update(data)
    result["dest_tags"] = {tag: {"before": before[tag], "after": after[tag]} for tag in before}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = tag_diff(before, after)
    exit_with(module, factory, result)


def finish_mirror(module: AnsibleModule, factory, result: dict, summary: dict) -> None:
    """Shape a mirror's result; fail (with everything done so far) when a tag failed."""
    result.update(
        changed=summary["changed"], copied=summary["copied"], mounted=summary["mounted"],
        already_present=summary["skipped"], notes=summary["notes"], duration=summary["duration"],
        tag_results={tag: public_copy(data) for tag, data in summary["tags"].items()}, failed_tags=summary["failed"], not_attempted=summary["not_attempted"],
    )
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = tag_diff(summary["dest_before"], summary["dest_after"])
    for text in summary.get("warnings", []):
        module.warn(scrub(text, factory.secrets()))
    if summary["failed"]:
        secrets = factory.secrets()
        failures = "; ".join(f"{tag}: {error['message']}" for tag, error in summary["failed"].items())
        stopped = f"; not attempted: {', '.join(summary['not_attempted'])}" if summary["not_attempted"] else ""
        for text in factory.warnings():
            module.warn(scrub(text, secrets))
        message = f"{len(summary['failed'])} of {len(summary['failed']) + len(summary['tags'])} tag(s) failed " \
                  f"to mirror: {failures}{stopped}"
        module.fail_json(msg=scrub(message, secrets), **scrub(result, secrets))
    exit_with(module, factory, result)


if __name__ == "__main__":
    main()
