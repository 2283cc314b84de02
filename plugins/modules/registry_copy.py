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
  - Either side can also be a local OCI image layout, oci-archive or docker-archive, for air-gapped
    networks; digests are unchanged through a layout or an oci-archive, and every blob read from
    disk is verified while it streams.
options:
  src:
    description:
      - The image to copy, C(host/repository:tag) or C(host/repository@sha256:...).
      - Without a host the image is on Docker Hub; without a tag or digest, C(latest) is copied
        (unless O(tags) is set).
      - With O(tags), a repository without tag or digest.
      - Or a local target in skopeo's spelling, C(oci:PATH[:NAME]) (an OCI image layout directory),
        C(oci-archive:PATH[:NAME]) (a tar of one) or C(docker-archive:PATH[:REPOSITORY:TAG]) (the
        C(docker save) format). NAME is a tag or C(repository:tag); the path ends at the first colon.
        Without NAME the layout must hold exactly one image, or, with O(tags), every repository in it
        is mirrored to its own name under O(dest).
    type: str
    required: true
  dest:
    description:
      - Where to copy to, C(host/repository[:tag]).
      - When it has no tag, the tag of O(src) is used; when O(src) has no tag either (a copy by
        digest), the image is pushed by digest and no tag is written.
      - A digest is not allowed here, because the digest is always the source's.
      - With O(tags), a repository without tag.
      - Or a local target, C(oci:PATH[:NAME]), C(oci-archive:PATH[:NAME]) or
        C(docker-archive:PATH[:REPOSITORY:TAG]). Without NAME the image is named C(repository:tag)
        after O(src), so one layout or archive can hold many repositories (mirror several into it).
        A layout that exists keeps its other entries; blobs are written under a temporary name and
        renamed once verified, C(index.json) last; a re-run after an interruption writes only what is
        missing. An archive is written to a temporary file and renamed at the end of the task.
      - A docker-archive holds single-platform images with uncompressed layers and no manifest, so
        the manifest digest changes (RV(notes) says so) and referrers are left out.
      - When O(src) is a layout or archive mirrored with O(tags), the registry (and optional path
        prefix) under which each repository of it is recreated, for example C(registry.example.com/mirror).
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
      - And cosign's tag-scheme artifacts of every copied manifest (C(sha256-<hex>.sig), C(.att), C(.sbom),
        for an index and each of its children). One the destination already holds under the same tag with
        other layers is merged (its layers first, then the source's new ones; a merged manifest has a new
        digest), never overwritten. In a local layout they are entries named C(repository:sha256-<hex>.sig),
        so they travel in a bundle; a docker archive cannot hold them. RV(attached) lists them.
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
      - With O(referrers), tags of the referrers fallback (C(sha256-<64 hex>)) and cosign's C(.sig), C(.att)
        and C(.sbom) tags are left to the referrers copy of their image, which merges them, instead of being
        copied as they are.
      - With O(verify), each selected tag is verified before it is copied; a tag that fails is not copied
        and is reported in RV(failed_tags) like any other failure (with O(keep_going) the others still are).
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
  - ocireg.registry.registry.verify
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

- name: Export an image with its signatures and SBOMs to a tarball (connected side)
  ocireg.registry.registry_copy:
    src: registry.example.com/team/app:1.4.2
    dest: oci-archive:/srv/export/bundle.tar
    referrers: true

- name: Import every image of the tarball into the isolated registry, each under its own name
  ocireg.registry.registry_copy:
    src: oci-archive:/media/usb/bundle.tar
    dest: registry.internal.example/mirror
    tags: ['.*']
    referrers: true

- name: Mirror only signed releases, with their signatures, attestations and SBOMs
  ocireg.registry.registry_copy:
    src: registry.build.example.com/team/app
    dest: mirror.example.com/team/app
    tags: ['1\.\d+\.\d+']
    referrers: true
    keep_going: true
    verify:
      keys: [/etc/registry/keys/cosign.pub]

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
verified:
  description:
    - What O(verify) checked for the source, V(null) without it (single copy; in mirror mode each entry of
      RV(tag_results) has its own). Its C(verified) list has one entry per digest checked (the image, or an
      index and its children as O(verify.index) asks), each with the accepted signatures (kind, key fingerprint
      C(sha256:...) of the key's DER SubjectPublicKeyInfo, algorithm, source V(tag_scheme) or V(referrer), the
      manifest that held it) and the required referrers found.
  returned: success, without O(tags)
  type: dict
  sample:
    digest: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
    index: self
    verified:
      - digest: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
        signatures:
          - kind: signature
            key: sha256:5f41c3b2a1e0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0
            algorithm: ecdsa-secp256r1
            source: tag_scheme
            manifest: sha256:0d3c0f7e8e0c1b2a39485766f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b
            predicate_type: null
        referrers: []
attached:
  description:
    - With O(referrers), the cosign tag-scheme artifacts (C(.sig), C(.att), C(.sbom)) of the copied manifests,
      one entry each, with the tag, the digest it holds at the destination afterwards and the action
      (V(copied), V(merged) with what the destination had, or V(present) when it already held every layer).
  returned: success, without O(tags)
  type: list
  elements: dict
  sample:
    - tag: sha256-9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb.sig
      digest: sha256:0d3c0f7e8e0c1b2a39485766f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b
      action: copied
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
    verifier,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    DEFAULT_CONCURRENCY,
    CopyOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.transfer import (
    registry_written_to,
    run_transfer,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    OPTION_SPEC,
)


def main() -> None:
    """Copy one image, or mirror the matching tags of a repository or bundle."""
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
            "verify": OPTION_SPEC,
            **connection_argument_spec(),
        },
        supports_check_mode=True,
    )
    params = module.params
    factory = new_factory(module)
    result: dict = {"changed": False, "src": params["src"], "dest": params["dest"]}
    with registry_errors(module, factory, **result):
        options = CopyOptions(
            platforms=tuple(params["platforms"]) if params["platforms"] else None,
            allow_index_rewrite=params["allow_index_rewrite"],
            referrers=params["referrers"],
            concurrency=params["concurrency"],
            check_mode=module.check_mode,
            verify=verifier(module, params["verify"]),
        )
        written = registry_written_to(params["dest"])
        if written is not None:
            factory.bind(written)  # the top-level credentials are for the registry written to
        done = run_transfer(
            params["src"], params["dest"], options,
            lambda reference, side: factory.repository(reference, params[f"{side}_auth"], side=side,
                                                       for_write=side == "dest" and not module.check_mode),
            tag_patterns=params["tags"], keep_going=params["keep_going"])
    result.update(src=done.src, dest=done.dest)
    for text in done.warnings:
        module.warn(text)
    if done.mirror is not None:
        finish_mirror(module, factory, result, done.mirror.to_dict())
    else:
        finish_copy(module, factory, result, done.copy)


def finish_copy(module: AnsibleModule, factory, result: dict, copied) -> None:
    """Shape a single copy's result (and its diff) and exit."""
    data = copied.to_dict()
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
        already_present=summary["already_present"], notes=summary["notes"], duration=summary["duration"],
        tag_results=summary["tags"], failed_tags=summary["failed"], not_attempted=summary["not_attempted"],
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
