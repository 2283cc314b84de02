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
    copied to the same tag in O(dest) (a mirror), O(concurrency) tags at a time.
  - Either side can also be a local OCI image layout, oci-archive or docker-archive, for air-gapped
    networks; digests are unchanged through a layout or an oci-archive, and every blob read from
    disk is verified while it streams.
  - With O(mirror_spec), many repositories are mirrored in one call, their tags chosen by selectors
    (regexes, semver ranges, newest N, newest patch per minor, minimum age, literal names), all on one
    bounded pool of O(concurrency) tags at a time shared by every repository. O(select) gives the same
    selectors to the mirror of O(src) to O(dest). O(tags), O(select) and O(mirror_spec) are three ways
    to write one mirror - one engine, one pool, one result (RV(repositories) has one summary line per
    repository, RV(tag_results) each tag's copy). O(select) and O(mirror_spec) can also remove
    destination tags gone upstream (O(prune_missing)), refuse to move drifted tags (O(no_clobber)),
    write progress to a file (O(progress_file)) and stay under a registry's pull limit
    (O(min_remaining), O(max_requests_per_second)).
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
      - With O(select), a registry repository without tag or digest.
      - Required unless O(mirror_spec) is given; excludes it.
    type: str
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
      - With O(select), the destination repository, C(host/repository).
      - Required unless O(mirror_spec) is given; excludes it.
    type: str
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
  format:
    description:
      - V(keep) copies every manifest byte for byte, Docker media types included, so digests never change.
        Into an C(oci:) or C(oci-archive:) target that keeps a Docker manifest or manifest list under a Docker
        media type in C(index.json), which skopeo, podman, buildah and other containers/image readers cannot
        read by name (C(no descriptor found for reference)); crane, regctl, oras and this collection can. A
        warning (also in RV(notes)) names each such image.
      - V(oci) converts Docker schema 2 manifests and manifest lists to OCI media types on the way; config and
        layer blobs keep their bytes and digests (only the media types naming them change). Unlike
        C(skopeo copy --format oci), which also rewrites the config blob as an OCI image config (so its config
        and manifest digests differ from these), only manifests change. The converted manifests get new
        digests; RV(converted) lists them old -> new and RV(digest) is the new one. Referrers of a converted
        manifest name its old digest and their signatures cover it, so they are left out (a note says which);
        cosign tag-scheme artifacts of converted manifests are not copied either.
        Docker schema 1 manifests cannot be converted (the task fails).
      - Applies to a single copy and to a mirror with O(tags), into any destination; not to O(mirror_spec)
        or O(select).
      - A run with V(oci) reads every manifest of the source (the conversion needs their bytes) and asks the
        destination about each converted one, where a byte-exact run whose tag is in place stops after two
        requests. A no-op of a two-platform list costs four reads of the source and three of the destination.
    type: str
    choices: [keep, oci]
    default: keep
  concurrency:
    description:
      - For a single copy, how many blobs are transferred at the same time (1 to 16).
      - The default was chosen with the benchmark in the collection's C(bench/) directory; each blob
        in flight holds about 2.5 MiB of memory.
      - When mirroring (O(tags), O(select) or O(mirror_spec)), how many tags are copied at the same time
        across all repositories (1 to 64), the tags in flight sharing 16 connections per registry for their
        blobs (each tag streams 16 / O(concurrency) blobs at once, at least 1 and at most 8; a mirror of one
        tag streams 8, like a single copy). A layer that several tags in flight share is transferred once.
    type: int
    default: 8
  tags:
    description:
      - Mirror mode. Regular expressions, each matched against the whole tag; every tag of O(src)
        matching one of them is copied to the same tag in O(dest).
      - A regular expression that matches no tag is not an error - the task stays V(ok) and a warning names it.
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
      - When V(false) the mirror starts no tag after the first failure; tags already in flight (up to
        O(concurrency)) finish, and the tags not tried are in RV(not_attempted). With O(concurrency=1) it
        stops exactly at the first failure.
      - O(mirror_spec) and O(select) always go on and report every failure per repository.
    type: bool
    default: false
  select:
    description:
      - Mirror O(src) (a registry repository) to O(dest) (a repository) with tag selectors, on the pool of
        O(mirror_spec); the same options apply (O(prune_missing), O(no_clobber), ...) and the same
        result is returned.
      - Mutually exclusive with O(tags) and O(mirror_spec). An empty dict selects every tag.
    type: dict
    # The selector sub-options are documented once, here, and merged into mirror_spec's (SELECTOR_SPEC
    # is their one argument spec); so their text names sibling selectors with C(), not O(select.*).
    suboptions: &selectors
      include:
        description: Regular expressions, each matched against the whole tag; a matching tag is a candidate.
        type: list
        elements: str
      exclude:
        description: Regular expressions (whole tag); a matching tag is never copied.
        type: list
        elements: str
      names:
        description: Literal tags to copy; exempt from the C(newest) and C(newest_patch_per) selectors.
        type: list
        elements: str
      semver:
        description:
          - A semver range, npm style, C(v) prefix allowed, for example C(>=1.20 <2), C(^1.2), C(~1.2), C(1.2.x),
            C(>=1 || <0.5). Tags that are not versions do not match.
        type: str
      prerelease:
        description:
          - Let pre-releases (C(1.2.0-rc.1), and suffixed tags such as C(1.25-alpine)) match the C(semver)
            range (only with it).
        type: bool
        default: false
      newest:
        description: Keep only the N newest of the candidates (ranked by C(newest_by)).
        type: int
      newest_by:
        description:
          - V(semver) ranks by version (tags that are not versions are left out), V(age) by the image's
            config C(created) time (read for the candidates only).
        type: str
        choices: [semver, age]
        default: semver
      newest_patch_per:
        description: Keep only the highest version of each V(minor) (C(1.2.x)) or V(major) (C(1.x)) line.
        type: str
        choices: [minor, major]
      min_age:
        description:
          - Skip tags whose image is younger than this duration (C(30m), C(12h), C(7d), C(2w)), or of unknown
            age; useful to let upstream re-tags settle.
        type: str
  mirror_spec:
    description:
      - A sync specification mirroring many repositories in one call. Each entry maps one or more source
        repositories to destinations and chooses their tags with selectors; with no selector every tag is
        copied. Selectors combine - O(mirror_spec[].include), O(mirror_spec[].semver) and
        O(mirror_spec[].names) choose candidates (their union), O(mirror_spec[].exclude) and
        O(mirror_spec[].min_age) remove some, then O(mirror_spec[].newest_patch_per) and
        O(mirror_spec[].newest) reduce them. RV(repositories) says what each selector chose and why.
      - Tags of the referrers and cosign schemes (C(sha256-<hex>), C(.sig), C(.att), C(.sbom)) are never
        selected; O(referrers) copies them with their image.
      - Mutually exclusive with O(src), O(dest), O(tags) and O(select).
      - A tag whose destination already holds the source digest costs two C(HEAD) requests and is reported
        as already present.
    type: list
    elements: dict
    suboptions:
      <<: *selectors
      src:
        description:
          - A source repository (C(host/path), no tag), or a list of them.
        type: raw
        required: true
      dest:
        description:
          - A registry (C(mirror.example:5000)) or a registry and path (C(mirror.example/hub)) under which the
            sources are named by O(mirror_spec[].naming) or O(mirror_spec[].rewrite).
        type: str
        required: true
      naming:
        description:
          - V(prefix) puts the whole source path under O(mirror_spec[].dest) (C(hub/library/nginx)),
            V(flat) only its last component (C(hub/nginx)), V(exact) takes O(mirror_spec[].dest) as the
            destination repository (one source only).
        type: str
        choices: [prefix, flat, exact]
        default: prefix
      rewrite:
        description:
          - Instead of O(mirror_spec[].naming), a regular expression that must match the whole source path and
            its replacement (C(\1) for group 1), put under the path of O(mirror_spec[].dest).
        type: dict
        suboptions:
          pattern:
            description: Regular expression matched against the whole source path.
            type: str
            required: true
          replacement:
            description: The new path.
            type: str
            required: true
  prune_missing:
    description:
      - With O(mirror_spec) or O(select), an exact mirror - remove destination tags whose source tag is gone
        (of the repositories mirrored). Tags of the referrers and cosign schemes are kept.
      - Only tags gone from the source are removed. A destination tag that the source still has is kept even
        when the selectors no longer choose it (an old release past C(newest)); remove those with
        M(ocireg.registry.registry_prune).
      - Guardrails as in M(ocireg.registry.registry_prune) - check mode lists them and removes nothing;
        a source that lists no tags at all removes nothing (and fails); more than O(max_deletions) removes
        nothing (and fails).
    type: bool
    default: false
  max_deletions:
    description: With O(prune_missing), the most tags one run may remove across all repositories.
    type: int
  no_clobber:
    description:
      - With O(mirror_spec) or O(select), never move a destination tag that already points at another
        digest than the source's; it is reported as drift (the C(drift) list of its entry in RV(repositories))
        and the task fails.
    type: bool
    default: false
  progress_file:
    description:
      - With O(mirror_spec) or O(select), append one JSON line per finished tag (repository, tag, status,
        bytes, seconds, done and total) to this file, flushed each time, so a long run (for example one
        started with C(async)) can be followed with C(tail -f).
      - In check mode nothing is written to it (the file is not even created); a path that could not be
        written still fails the task.
    type: path
  min_remaining:
    description:
      - With O(mirror_spec) or O(select), stop cleanly when a registry reports (C(RateLimit-Remaining),
        Docker Hub) this many requests left or fewer - no new tag is started, none is cut, the rest are
        reported as not attempted and the task fails saying when to run again.
    type: int
  max_requests_per_second:
    description:
      - With O(mirror_spec) or O(select), the most requests per second the whole run sends to the registries
        (all workers together; token requests to an auth server are not counted).
    type: float
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
        and skipped, with byte counts; writes nothing. With O(prune_missing), lists the tags it would remove.
      - It reads the source's manifests, not its blobs, so it does not check that the source blobs exist or
        are intact; a corrupted or partially pushed source passes check mode and fails the real run.
  diff_mode:
    support: full
    description:
      - The destination tags' digests before and after (C(repository:tag) keys with O(mirror_spec) or
        O(select)).
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

- name: Export a Docker-format image as OCI, for skopeo or podman on the other side (digests change)
  ocireg.registry.registry_copy:
    src: docker.io/library/alpine:3.20
    dest: oci-archive:/srv/export/alpine.tar
    format: oci
  register: exported  # exported.converted lists old -> new digests

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

- name: Mirror upstream releases into a local mirror, many repositories in one task
  ocireg.registry.registry_copy:
    mirror_spec:
      - src: [docker.io/library/nginx, docker.io/library/redis]
        dest: mirror.example.com/hub          # -> mirror.example.com/hub/library/nginx ...
        semver: '>=1.25 <2 || >=7'
        newest_patch_per: minor
        min_age: 1d
      - src: ghcr.io/org/app
        dest: mirror.example.com/apps
        naming: flat                          # -> mirror.example.com/apps/app
        include: ['v\d+\.\d+\.\d+']
        exclude: ['.*-debug']
        newest: 5
    concurrency: 16
    no_clobber: true
    min_remaining: 20                         # stop before Docker Hub's pull limit runs out
    progress_file: /var/log/mirror-progress.jsonl
  register: mirror

- name: One line per repository
  ansible.builtin.debug:
    msg: "{{ mirror.repositories | map(attribute='line') }}"

- name: An exact mirror of one repository's 1.x releases, removing tags gone upstream
  ocireg.registry.registry_copy:
    src: registry.example.com/team/app
    dest: mirror.example.com/team/app
    select:
      semver: ^1
    prune_missing: true
    max_deletions: 10

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
  returned: without O(mirror_spec)
  type: str
  sample: registry.example.com/team/app:1.4.2
dest:
  description: The destination, in canonical form.
  returned: without O(mirror_spec)
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
  description:
    - What was transferred (in check mode, what would be).
    - In mirror mode each manifest and blob counts once per destination repository (a layout's repositories
      share one count), however many tags share it and whichever tag moved it, so check mode predicts what the
      real run then does and a run says the same at every O(concurrency). A tag's own entry in
      RV(tag_results) says what that tag's copy moved; when tags share content, which of them moved it depends
      on timing, so use these totals.
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
      manifest that held it; for a keyless signature, C(key) is V(null) and C(identity), C(issuer),
      C(log_index) and C(signed_at) say who signed, per which OIDC issuer, and where and when Rekor logged
      it) and the required referrers found.
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
converted:
  description:
    - With O(format=oci), the manifests converted from Docker to OCI media types, in the order they were
      written (an index last), each with its old digest (C(from)), its new one (C(to)) and its new media type.
  returned: success, without O(tags)
  type: list
  elements: dict
  sample:
    - from: sha256:9b2a28eb47540823042a2ba401386845089bb7b62a9637d55816132c4c3c36eb
      to: sha256:3f0e1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100
      media_type: application/vnd.oci.image.index.v1+json
restored_after_prune:
  description:
    - Destination tags that a concurrent M(ocireg.registry.registry_prune) removed with their manifest right
      after this task wrote them, and that this task wrote again once the prune's lease was gone (see the
      guide on running in parallel). Always empty unless O(prune_lease) is set.
  returned: success, when something was written
  type: list
  elements: str
  sample: []
mounted:
  description: Digests of the blobs mounted from the source repository (same registry) instead of transferred.
  returned: success
  type: list
  elements: str
  sample: []
already_present:
  description:
    - What the destination already had, so was neither transferred nor mounted.
    - In mirror mode what was there before the run, each digest once per destination repository; what one
      tag wrote and a later tag found is counted in RV(copied) only.
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
    - Mirror mode (O(tags), O(select) or O(mirror_spec)). One entry per tag copied, with the keys of a single
      copy plus C(changed), C(dest_before) and C(dest_after) (tag to digest).
    - Keyed by the tag; C(repository:tag) for a bundle mirrored out of a layout; C(host/repository:tag) with
      O(select) or O(mirror_spec).
  returned: in mirror mode
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
  description: Mirror mode. The tags that failed, with the error of each (keyed as RV(tag_results)).
  returned: in mirror mode
  type: dict
  sample: {"1.0.1": {type: DigestMismatchError, message: "...", status: null, code: null}}
not_attempted:
  description:
    - Mirror mode. Tags not tried because an earlier one failed and O(keep_going) is off, or because
      O(min_remaining) stopped the run (named as in RV(tag_results)).
  returned: in mirror mode
  type: list
  elements: str
  sample: []
repositories:
  description:
    - In mirror mode, one entry per source and destination repository, in spec order, with
      its summary C(line), the selectors as written (C(selectors)), what they chose and why (C(selection) -
      C(selected), C(missing) names and one C(decisions) entry per source tag with the deciding selector and
      reason), each tag's outcome (C(tags) - C(status), C(digest), C(before), C(bytes), C(seconds), C(error)),
      the tags by outcome (C(copied), C(already_present), C(failed), C(drift), C(not_attempted)), the tags
      planned for removal and removed (C(prune_planned), C(pruned); in check mode C(pruned) lists the tags that
      would be removed, as C(copied) lists those that would be copied), C(bytes) (of the distinct blobs its
      tags copied, each once; a tag's own C(bytes) says what its copy moved), C(seconds), a
      repository-level C(error) (for example a source that cannot be listed) and C(restored_after_prune)
      (tags a concurrent prune removed right after they were written, written again).
    - With O(tags), C(selectors) is C({tags - [patterns]}) and each C(decisions) entry says which pattern chose
      the tag.
  returned: in mirror mode
  type: list
  elements: dict
  sample:
    - src: docker.io/library/nginx
      dest: mirror.example.com/hub/library/nginx
      line: "docker.io/library/nginx -> mirror.example.com/hub/library/nginx: 3 copied, 9 already present, 0 failed, 48.2 MiB, 6.1 s"
      copied: ["1.27.3", "1.27.4", "1.28.0"]
      already_present: ["1.25.5"]
      failed: []
      drift: []
      not_attempted: []
      prune_planned: []
      pruned: []
      restored_after_prune: []
      bytes: 50541772
      seconds: 6.1
      error: null
summary:
  description:
    - In mirror mode, totals over every repository - tags C(copied), C(already_present),
      C(failed), C(drift), C(not_attempted), C(pruned) (in check mode, the tags that would be removed),
      and C(repositories), C(failed_repositories) (repositories that failed as a whole, such as a source whose
      tags cannot be listed; their tags count in none of the others), C(bytes) (as in RV(copied)), C(seconds).
    - Every spelling (O(tags), O(select), O(mirror_spec)) returns these mirror keys when it fails too, with what
      was done before the failure (empty when a source could not be listed).
    - With C(--diff), a removed tag's C(before) is the digest it pointed at (read before the removal).
  returned: in mirror mode
  type: dict
  sample: {copied: 3, already_present: 9, failed: 0, drift: 0, not_attempted: 0, pruned: 0, repositories: 1,
           failed_repositories: 0, bytes: 50541772, seconds: 6.1}
prune:
  description:
    - In mirror mode, O(prune_missing)'s plan - C(planned) and C(removed) (destination
      repository to tags) and C(refused) (why nothing was removed, or V(null)).
    - C(already_gone) (destination repository to tags) lists the removals that found the tag already gone
      (removed by someone else meanwhile); they count as removed and are in C(removed) too.
  returned: in mirror mode
  type: dict
  sample: {planned: {"mirror.example.com/team/app": ["1.0.0-old"]}, removed: {"mirror.example.com/team/app": ["1.0.0-old"]},
           refused: null, already_gone: {}}
stopped:
  description: Why the run stopped early (O(min_remaining) reached), or V(null).
  returned: in mirror mode
  type: str
  sample: null
rate_limits:
  description:
    - In mirror mode, the last pull limit each registry reported (host to C(limit),
      C(remaining), C(window) in seconds and C(source) header); empty when no registry sends one.
  returned: in mirror mode
  type: dict
  sample: {"registry-1.docker.io": {limit: 100, remaining: 76, window: 21600, source: ratelimit-remaining}}
progress_file:
  description: The O(progress_file) written, or V(null) (always in check mode, which writes none).
  returned: in mirror mode
  type: str
  sample: /var/log/mirror-progress.jsonl
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    RegistryTask,
    connection_argument_spec,
    side_auth_argument_spec,
    tag_diff,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying import (
    DEFAULT_CONCURRENCY,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.spec import (
    OPTION_SPEC,
)

#: The selector sub-options, shared by each mirror_spec entry and by select.
SELECTOR_SPEC: dict[str, dict[str, Any]] = {
    "include": {"type": "list", "elements": "str"},
    "exclude": {"type": "list", "elements": "str"},
    "names": {"type": "list", "elements": "str"},
    "semver": {"type": "str"},
    "prerelease": {"type": "bool", "default": False},
    "newest": {"type": "int"},
    "newest_by": {"type": "str", "choices": ["semver", "age"], "default": "semver"},
    "newest_patch_per": {"type": "str", "choices": ["minor", "major"]},
    "min_age": {"type": "str"},
}
#: Options that only a sync (mirror_spec or select) takes.
SYNC_ONLY = ("prune_missing", "max_deletions", "no_clobber", "progress_file", "min_remaining",
             "max_requests_per_second")


def main() -> None:
    """Copy one image, mirror the matching tags of a repository or bundle, or run a sync specification."""
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "str"},
            "dest": {"type": "str"},
            "src_auth": side_auth_argument_spec(),
            "dest_auth": side_auth_argument_spec(),
            "platforms": {"type": "list", "elements": "str", "default": ["all"]},
            "allow_index_rewrite": {"type": "bool", "default": False},
            "referrers": {"type": "bool", "default": False},
            "format": {"type": "str", "default": "keep", "choices": ["keep", "oci"]},
            "concurrency": {"type": "int", "default": DEFAULT_CONCURRENCY},
            "tags": {"type": "list", "elements": "str"},
            "keep_going": {"type": "bool", "default": False},
            "verify": OPTION_SPEC,
            "mirror_spec": {"type": "list", "elements": "dict", "options": {
                "src": {"type": "raw", "required": True},
                "dest": {"type": "str", "required": True},
                "naming": {"type": "str", "choices": ["prefix", "flat", "exact"], "default": "prefix"},
                "rewrite": {"type": "dict", "options": {
                    "pattern": {"type": "str", "required": True},
                    "replacement": {"type": "str", "required": True},
                }},
                **SELECTOR_SPEC,
            }},
            "select": {"type": "dict", "options": SELECTOR_SPEC},
            "prune_missing": {"type": "bool", "default": False},
            "max_deletions": {"type": "int"},
            "no_clobber": {"type": "bool", "default": False},
            "progress_file": {"type": "path"},
            "min_remaining": {"type": "int"},
            "max_requests_per_second": {"type": "float"},
            **connection_argument_spec(),
        },
        mutually_exclusive=[("mirror_spec", "src"), ("mirror_spec", "dest"), ("mirror_spec", "tags"),
                            ("mirror_spec", "select"), ("select", "tags")],
        required_one_of=[("mirror_spec", "src")],
        required_together=[("src", "dest")],
        supports_check_mode=True,
    )
    task = RegistryTask(module)
    params = module.params
    if params["mirror_spec"] is not None or params["select"] is not None:
        if params["format"] != "keep":
            task.fail("format: oci applies to a copy of src to dest (and to tags), not to mirror_spec "
                      "or select: drop format, or copy those images with src, dest and tags")
        run_mirror_spec(task)
        return
    misplaced = [name for name in SYNC_ONLY if params[name] not in (None, False)]
    if misplaced:
        verb, them = ("applies", "it") if len(misplaced) == 1 else ("apply", "them")
        task.fail(f"{', '.join(misplaced)} {verb} only with mirror_spec or select: add one (select: {{}} "
                  f"mirrors every tag of src to dest) or drop {them}")
    factory = task.factory
    result: dict = {"changed": False, "src": params["src"], "dest": params["dest"]}
    # Each engine is imported by the run that uses it: a single copy does not load the mirror engine.
    # pylint: disable=import-outside-toplevel
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
        CopyOptions,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.transfer import (
        registry_written_to,
        run_transfer,
    )

    with task.errors(**result):
        options = CopyOptions(
            platforms=tuple(params["platforms"]) if params["platforms"] else None,
            allow_index_rewrite=params["allow_index_rewrite"],
            referrers=params["referrers"],
            # A mirror's concurrency counts tags; the engine chooses the blob streams of each.
            concurrency=params["concurrency"] if params["tags"] is None else DEFAULT_CONCURRENCY,
            check_mode=module.check_mode,
            verify=task.verifier(params["verify"]),
            to_oci=params["format"] == "oci",
            honour_leases=params["prune_lease"],
        )
        written = registry_written_to(params["dest"])
        if written is not None:
            factory.bind(written)  # the top-level credentials are for the registry written to
        done = run_transfer(
            params["src"], params["dest"], options,
            lambda reference, side: factory.repository(reference, params[f"{side}_auth"], side=side,
                                                       for_write=side == "dest" and not module.check_mode),
            tag_patterns=params["tags"], keep_going=params["keep_going"], concurrency=params["concurrency"],
            describe=task.describe)
    result.update(src=done.src, dest=done.dest)
    for text in done.warnings:
        task.warn(text)
    if done.mirror is not None:
        finish_mirror(module, task, result, done.mirror.to_dict(), per_tag=True)
    else:
        finish_copy(module, task, result, done.copy)


def _set(block: dict | None) -> dict:
    """The keys the user set (Ansible fills every unset sub-option with None, or its default)."""
    return {key: value for key, value in (block or {}).items()
            if value is not None and not (key in SELECTOR_SPEC and value == SELECTOR_SPEC[key].get("default"))}


def run_mirror_spec(task: RegistryTask) -> None:
    """Mirror a sync specification (mirror_spec, or src/dest with select) on one shared pool."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
        SyncOptions,
        run_sync,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
        expand_spec,
    )

    module = task.module
    params = module.params
    factory = task.factory
    result: dict = {"changed": False}
    if params["select"] is not None:
        result.update(src=params["src"], dest=params["dest"])
    with task.errors(**result):
        if params["mirror_spec"] is not None:
            pairs = expand_spec([_set(entry) for entry in params["mirror_spec"]])
        else:
            pairs = expand_spec([{"src": params["src"], "dest": params["dest"], "naming": "exact",
                                  **_set(params["select"])}], option="select")
        # The top-level credentials are for the registries written to (refused if there are several).
        factory.bind_reads([pair.dest_registry for pair in pairs], what="the mirror destinations")
        options = SyncOptions(
            concurrency=params["concurrency"],
            platforms=None if params["platforms"] in (None, ["all"]) else tuple(params["platforms"]),
            referrers=params["referrers"], check_mode=module.check_mode,
            prune_missing=params["prune_missing"], max_deletions=params["max_deletions"],
            no_clobber=params["no_clobber"], min_remaining=params["min_remaining"],
            max_requests_per_second=params["max_requests_per_second"], progress_file=params["progress_file"],
            verify=task.verifier(params["verify"]), prune_lease=params["prune_lease"], describe=task.describe,
            diff=module._diff)  # pylint: disable=protected-access
        data = run_sync(pairs, lambda host, side: factory.registry(
            host, params["src_auth"] if side == "src" else params["dest_auth"], side=side), options)
    if params["select"] is not None:
        result.update(src=pairs[0].src, dest=pairs[0].dest)
    finish_mirror(module, task, result, data)


def finish_copy(module: AnsibleModule, task: RegistryTask, result: dict, copied) -> None:
    """Shape a single copy's result (and its diff) and exit."""
    data = copied.to_dict()
    before, after = data.pop("dest_before"), data.pop("dest_after")
    result.update(data)
    result["dest_tags"] = {tag: {"before": before[tag], "after": after[tag]} for tag in before}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = tag_diff(before, after)
    for text in copied.lease_warnings:  # a wait for a prune's lease is always announced
        task.warn(text)
    task.exit(result)


def finish_mirror(module: AnsibleModule, task: RegistryTask, result: dict, data: dict, *,
                  per_tag: bool = False) -> None:
    """Shape a mirror's result, one shape whichever spelling ran it (and its diff); fail with
    everything done so far when anything failed. ``per_tag``: the ``tags`` spelling's message."""
    for text in data.pop("warnings"):
        task.warn(text)
    failed = data.pop("failed")
    before, after = data.pop("dest_before"), data.pop("dest_after")
    result.update(data)
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = tag_diff(before, after)
    if failed:
        # pylint: disable=import-outside-toplevel
        from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
            failure_message,
        )

        task.fail(failure_message(result, per_tag=per_tag), **result)
    task.exit(result)


if __name__ == "__main__":
    main()
