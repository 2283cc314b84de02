#!/usr/bin/python
# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: registry_tag
short_description: Point tags at a digest in an OCI or Docker registry, declaratively and guarded
version_added: 0.1.0
description:
  - Declares which digest tags of a repository point to, for example "C(prod) must point to what
    C(staging) points to now", over the OCI Distribution API (no Docker daemon).
  - With O(state=present) the source is resolved to a digest and every tag in O(tags) is made to
    point to that digest, writing the exact manifest bytes of the source, so the digest never changes
    (a multi-platform index keeps its digest). Tags that already point there are not written; when
    all do, nothing is written and the task reports no change.
  - The source may be in the same repository (O(source=:staging) or O(source=@sha256:...)) or in
    another repository or registry (a full reference). Content from elsewhere is copied first
    (blobs mounted within a registry, streamed between registries) by the same engine as
    M(ocireg.registry.registry_copy), then tagged.
  - With O(state=absent) the tags are removed and the manifest they pointed to is kept (other tags
    sharing it stay untouched), unless O(delete_manifest=true).
  - O(expected_digest) makes the change a compare-and-swap, so two pipelines promoting at once
    cannot silently overwrite each other.
  - O(verify) promotes only images signed by given keys, by given keyless (Sigstore) identities or under a
    Notation trust policy; the source digest is checked (in its own repository) before anything is copied or
    tagged. It needs C(cryptography) (ansible-core brings it) on the host that executes the module.
options:
  repository:
    description:
      - The repository whose tags are managed, C(host/repository) such as C(registry.example.com/team/app).
      - Without a host the repository is on Docker Hub. It must not carry a tag or digest.
    type: str
    required: true
  tags:
    description:
      - The tags to manage in O(repository). Repeated tags count once.
    type: list
    elements: str
    required: true
  source:
    description:
      - What the tags must point to (O(state=present), where it is required).
      - C(:tag) or C(@sha256:...) for a tag or digest of O(repository) itself.
      - A full reference C(host/repository:tag) or C(host/repository@sha256:...) for an image in another
        repository or registry. When both a tag and a digest are given, the digest decides.
      - A bare name without C(/), C(:) or C(@) (C(staging)) is refused, because it would mean the Docker Hub
        image C(library/staging); write V(:staging) for the tag of O(repository).
    type: str
  state:
    description:
      - V(present) points every tag in O(tags) to the digest of O(source).
      - V(absent) removes every tag in O(tags).
      - Each tag is removed with the registry's tag C(DELETE) (OCI distribution-spec 1.1) where it answers one.
        Where it does not (CNCF Distribution 2.8), the tag is first pointed at a unique placeholder artifact
        (artifact type C(application/vnd.ocireg.untag.v1)) that is then deleted by digest, so for that one round
        trip a reader of the tag gets the placeholder instead of the image. A task killed in between leaves
        the tag on the placeholder until it runs again.
    type: str
    choices: [present, absent]
    default: present
  expected_digest:
    description:
      - A compare-and-swap guard. Every tag that has to change must currently point to this digest;
        with V(absent), every tag that has to change must not exist yet.
      - If one does not, the module fails, naming the tag, the digest it points to and the expected
        digest, and changes nothing, not even the tags that matched. A tag that does not exist yet is
        reported as such, not as moved by someone else.
      - A mapping gives each tag its own expected digest or V(absent), for example C(prod) mapped to its
        current digest and C(stable) mapped to V(absent), to move C(prod) and create C(stable) in one task.
        Tags the mapping does not list are not guarded, and a key that is not in O(tags) is refused.
      - A tag already in the desired state satisfies the guard, so re-running a finished promotion
        is a no-op and re-running an interrupted one completes it.
      - The guard is read just before writing (and again after a copy from another repository);
        the registry API has no atomic compare-and-swap, so it narrows the race to that instant.
        Each guarded tag is then read back after a short wait (three times the read-to-write time,
        0.05 to 2 s), so a rival write that lands right after this one fails the task as a lost race.
      - Without this option a tag is written without a read-back or a wait, and the last writer wins.
    type: raw
  delete_manifest:
    description:
      - With O(state=absent), delete the manifest the tags point to instead of removing only the tags.
        Deleting a manifest removes every tag that points to it.
      - The repository's tag list is read and each tag is resolved to find other tags pointing to the same
        digest; if there are any outside O(tags), the module fails unless O(force=true).
      - Only for O(state=absent).
    type: bool
    default: false
  force:
    description:
      - With O(delete_manifest=true), delete the manifest even when tags outside O(tags) point to it;
        those tags are removed too and are listed in RV(tags) and the diff.
    type: bool
    default: false
  platforms:
    description:
      - For a O(source) in another repository or registry, the platforms to copy from a multi-platform
        index (C(os/arch[/variant])). V(all) or unset copies the index as it is and keeps its digest.
      - A subset gives a new, smaller index with another digest; that needs O(allow_index_rewrite=true),
        and the tags then point to the new digest.
      - Ignored for a O(source) in O(repository) itself, which is never rewritten.
    type: list
    elements: str
  allow_index_rewrite:
    description:
      - Accept that O(platforms) selects only part of a multi-platform index, so the tags point to a new,
        reduced index with a digest different from the source's.
      - Without it, such a promotion fails before anything is copied.
    type: bool
    default: false
  referrers:
    description:
      - For a O(source) in another repository or registry, also copy the manifests that refer to it
        (signatures, SBOMs, attestations), OCI 1.1 referrers and cosign's tag-scheme artifacts
        (C(sha256-<hex>.sig), C(.att), C(.sbom)) of the image and of each child of an index.
      - A cosign artifact the destination already holds under the same tag with other layers is merged
        (its signatures first, then the source's new ones), never overwritten; the merged manifest has a
        new digest.
    type: bool
    default: false
extends_documentation_fragment:
  - ocireg.registry.registry
  - ocireg.registry.registry.src_auth
  - ocireg.registry.registry.verify
  - ocireg.registry.registry.action_group
attributes:
  check_mode:
    support: full
    description: Reads the tags and the source and reports what would change; sends no write request.
  diff_mode:
    support: full
    description: Shows each tag's digest before and after (V(absent) for a missing tag).
author:
  - ocireg.registry contributors (@ocireg)
seealso:
  - module: ocireg.registry.registry_copy
    description: Copy images and whole repositories between registries.
  - module: ocireg.registry.registry_manifest_info
    description: Read the digest a tag points to, for O(expected_digest).
notes:
  - The action group C(ocireg.registry.registry) lets you set the connection options once in C(module_defaults).
  - On registries without tag deletion (CNCF Distribution 2.8 and older), a tag is removed by pushing a
    unique tiny manifest under it and deleting that manifest; other tags are never affected.
    RV(method) says which way was used.
"""

EXAMPLES = r"""
- name: Promote what staging points to now to prod
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    source: ":staging"
    tags: [prod]

- name: Promote a pinned digest, but only if prod still points where we last saw it
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    source: "@sha256:4f2c6b0a0c1e8d3f3a1c2b9e8f7d6c5b4a3928171615141312111009080706a5"
    tags: [prod, stable]
    expected_digest: "{{ previous_prod_digest }}"

- name: Move prod and create the new release tag in one guarded task
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    source: ":rc-42"
    tags: [prod, "1.4.0"]
    expected_digest:
      prod: "{{ previous_prod_digest }}"
      "1.4.0": absent

- name: Create a release tag only if nobody created it yet
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    source: ":rc-42"
    tags: ["1.4.0"]
    expected_digest: absent

- name: Promote from a build registry to production, copying the image first
  ocireg.registry.registry_tag:
    repository: prod-registry.example.com/team/app
    source: build-registry.example.com/team/app:1.4.0
    tags: ["1.4.0", latest]
    referrers: true
    username: deployer
    password: "{{ prod_registry_password }}"
    src_auth:
      username: reader
      password: "{{ build_registry_password }}"

- name: Promote to prod only a build our GitHub Actions release workflow signed keylessly (Sigstore)
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    source: ":rc"
    tags: [prod]
    verify:
      keyless:
        - identity_regex: 'https://github\.com/example/app/\.github/workflows/release\.yml@refs/tags/v.*'
          issuer: https://token.actions.githubusercontent.com

- name: Promote to prod only a build signed with the release key (checked before anything is written)
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    source: ":rc"
    tags: [prod]
    verify:
      keys:
        - "{{ lookup('file', 'cosign.pub') }}"
      annotations:
        env: prod
      referrers:
        - artifact_type: application/spdx+json

- name: Remove a tag, keeping the image for the other tags
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    tags: [canary]
    state: absent

- name: Delete an image by one of its tags, refusing if other tags still use it
  ocireg.registry.registry_tag:
    repository: registry.example.com/team/app
    tags: [broken-build]
    state: absent
    delete_manifest: true
"""

RETURN = r"""
digest:
  description:
    - The digest the tags point to after the task (O(state=present)).
    - V(null) for O(state=absent).
  returned: success
  type: str
  sample: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
tags:
  description:
    - Per tag, the digest before and after the task (V(null) when the tag does not exist).
    - Also returned when O(expected_digest) blocks the change; V(after) then equals V(before).
    - With O(delete_manifest=true) and O(force=true), other tags removed with the manifest are listed too.
  returned: always
  type: dict
  sample:
    prod:
      before: sha256:1c2f9dc4d6c1f2f4b8e8a3b2d1c0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2
      after: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
      action: move
      sibling: false
      method: null
  contains:
    before:
      description: Digest before, V(null) when the tag did not exist.
      type: str
    after:
      description: Digest after (in check mode, what it would be), V(null) when the tag does not exist.
      type: str
    action:
      description: V(none), V(create), V(move) or V(remove).
      type: str
    sibling:
      description: V(true) for a tag outside O(tags) removed because it shared a deleted manifest.
      type: bool
    method:
      description: How the tag was removed (see RV(method)); V(null) otherwise.
      type: str
method:
  description:
    - How tags were removed (O(state=absent)), V(null) when nothing was removed.
    - V(tag_delete) is the OCI tag C(DELETE); V(dummy_manifest) pushes a unique tiny manifest under the tag and
      deletes it, for registries without tag C(DELETE); V(manifest_delete) deleted the manifest itself
      (O(delete_manifest=true)).
    - In check mode it is the method a run would use when the registry is already known, else V(null)
      (finding out needs a C(DELETE)).
  returned: success
  type: str
  sample: dummy_manifest
deleted:
  description: Digests of manifests deleted (O(delete_manifest=true)); empty otherwise.
  returned: success
  type: list
  elements: str
  sample: []
copied:
  description:
    - What was copied from a O(source) in another repository or registry (manifests, blobs, bytes,
      mounted blobs), as M(ocireg.registry.registry_copy) reports it; V(null) when nothing had to be copied.
  returned: success
  type: dict
  sample: {"manifests": 1, "blobs": 2, "bytes": 3145728, "mounted": 0}
summary:
  description: One readable line per tag, C(host/repository:tag  before -> after  (what happened)).
  returned: always
  type: list
  elements: str
  sample:
    - "registry.example.com/team/app:prod  sha256:1c2f9dc4d6c1 -> sha256:9b2a28eb4754  (moved)"
before:
  description: Tag to digest map before the task (V(null) for a missing tag).
  returned: always
  type: dict
  sample: {"prod": "sha256:1c2f9dc4d6c1f2f4b8e8a3b2d1c0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2"}
restored_after_prune:
  description:
    - Tags that a concurrent M(ocireg.registry.registry_prune) removed with their manifest right after this
      task wrote them, and that this task wrote again once the prune's lease was gone (see the guide on
      running in parallel). Always empty unless O(prune_lease) is set.
  returned: when tags were written (O(state=present))
  type: list
  elements: str
  sample: []
verified:
  description:
    - What O(verify) checked, V(null) without it. Its C(verified) list has one entry per digest checked (the
      image, or an index and its children as O(verify.index) asks), each with the accepted signatures (kind,
      key fingerprint C(sha256:...) of the key's DER SubjectPublicKeyInfo, algorithm, source V(tag_scheme) or
      V(referrer), the manifest that held it; for a keyless signature, C(key) is V(null) and C(identity),
      C(issuer), C(log_index) and C(signed_at) say who signed, per which OIDC issuer, and where and when Rekor
      logged it) and the required referrers found.
  returned: success
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
after:
  description: Tag to digest map after the task (in check mode, what it would be).
  returned: always
  type: dict
  sample: {"prod": "sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    RegistryTask,
    connection_argument_spec,
    side_auth_argument_spec,
    tag_diff,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.apply import (
    SourceCopy,
    promote,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.plan import (
    check_source_text,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.spec import (
    OPTION_SPEC,
)


def parse_repository(text: str) -> Reference:
    """The target repository; a tag or digest in it is refused rather than silently dropped."""
    reference = Reference.parse(text)
    if reference.tag is not None or reference.digest is not None:
        raise InvalidInputError(
            f"repository {text!r} carries a tag or digest: give only host/repository and put tags in tags "
            "and the image to point them to in source")
    return reference


def main() -> None:
    """Plan and apply one promotion, then exit with digests, per-tag before/after and the diff."""
    module = AnsibleModule(
        argument_spec={
            "repository": {"type": "str", "required": True},
            "tags": {"type": "list", "elements": "str", "required": True},
            "source": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "expected_digest": {"type": "raw"},
            "delete_manifest": {"type": "bool", "default": False},
            "force": {"type": "bool", "default": False},
            "platforms": {"type": "list", "elements": "str"},
            "allow_index_rewrite": {"type": "bool", "default": False},
            "referrers": {"type": "bool", "default": False},
            "verify": OPTION_SPEC,
            "src_auth": side_auth_argument_spec(),
            **connection_argument_spec(),
        },
        required_if=[("state", "present", ("source",))],
        supports_check_mode=True,
    )
    task = RegistryTask(module)
    factory = task.factory
    params = module.params
    with task.errors():
        target = parse_repository(params["repository"])
        state = params["state"]
        if state == "present" and (params["delete_manifest"] or params["force"]):
            raise InvalidInputError("delete_manifest and force only apply to state=absent")
        if state == "absent" and params["verify"] is not None:
            raise InvalidInputError("verify checks the image tags are pointed at; it does not apply to state=absent")
        verify = task.verifier(params["verify"])
        expected = params["expected_digest"]
        if expected is not None and not isinstance(expected, (str, dict)):
            raise InvalidInputError(
                f"expected_digest must be a digest, 'absent', or a mapping tag -> digest, got {expected!r}")
        source_text = check_source_text(params["source"], params["repository"]) if params["source"] else None
        source = Reference.parse_relative(source_text, target) if source_text else None
        factory.bind(target.registry)  # the top-level credentials are for the registry written to
        repository = factory.repository(target)
        source_repository = repository
        if source is not None and source.name != target.name:
            source_repository = factory.repository(source, params["src_auth"], side="src")
        source_copy = SourceCopy(
            platforms=tuple(params["platforms"]) if params["platforms"] is not None else None,
            allow_index_rewrite=params["allow_index_rewrite"],
            referrers=params["referrers"],
        )
        outcome = promote(
            repository,
            params["tags"],
            state=state,
            source=source,
            source_repository=source_repository,
            expected_digest=expected,
            delete_manifest=params["delete_manifest"],
            force=params["force"],
            source_copy=source_copy,
            check_mode=module.check_mode,
            verify=verify,
            prune_lease=params["prune_lease"],
        )
    result = outcome.to_result()
    result["diff"] = tag_diff(result["before"], result["after"])
    for text in outcome.lease_notes:  # a wait for a prune's lease is always announced
        task.warn(text)
    task.exit(result)


if __name__ == "__main__":
    main()
