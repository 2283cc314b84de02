#!/usr/bin/python
# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: registry_prune
short_description: Delete old images from OCI or Docker registries by retention rules, with an exact plan first
version_added: 0.1.0
description:
  - Applies a retention policy to one repository, or to every repository of a registry matching glob patterns,
    over the OCI Distribution API (no Docker daemon, no registry-side tooling).
  - Rules select B(tags); deletions act on B(digests). A digest is deleted only when every tag on it is
    condemned and nothing that stays reaches it. A digest that stays keeps B(all) its tags (keep wins for whole
    images, as in Harbor, GAR and ECR); a tag condemned on a kept image stays, and RV(skipped_items) says
    C(kept_image). O(untag_kept_images=true) removes such tags one by one (untagged) instead.
  - A repository that does not exist fails the task (O(missing_repository)), and a tag pattern that selects no tag
    while the repository has tags gives a warning naming it, so a misspelt name or pattern is never a silent
    no-op.
  - Everything reachable from a kept tag is kept, always - children of a multi-platform index, referrers
    (signatures, SBOMs, attestations found with the referrers API or the C(sha256-<hex>) fallback tag) and cosign
    C(.sig), C(.att), C(.sbom) tags. When a digest is deleted, what it owns goes with it.
  - Ages come from O(timestamp_sources). A missing, unparsable, pre-2000 or future timestamp is I(unknown), and a
    digest of unknown age is never deleted (O(on_unknown_age)). Nothing younger than O(grace_period) is deleted.
  - The module plans first, then applies. Just before deleting, it re-reads the tags; a deletion that a change
    since planning makes unsafe (a tag moved, a new tag or a new image that references the digest, a new
    signature) is skipped with reason C(changed_since_plan).
  - Guardrails (O(max_deletions), O(max_delete_ratio), O(min_keep), and O(allow_empty_repository), on by default)
    fail the task before anything is deleted.
  - Check mode is the dry run, through the same code path with the writes left out; RV(plan) is exactly what a
    real run does with the same registry state.
  - Deleting manifests does not free disk space on a self-hosted registry until its garbage collection runs
    (RV(gc_required)); the C(ocireg.registry.retention) role can run it.
options:
  repository:
    description:
      - The repository to prune, C(host/repository) such as C(registry.example.com/team/app), without tag or digest.
      - Mutually exclusive with O(repositories).
    type: str
  repositories:
    description:
      - Repository names or glob patterns (C(team/*), C(*/cache-*)) on O(registry).
      - Patterns are matched against the registry's catalog (C(GET /v2/_catalog)), which needs the catalog
        permission; names without C(*), C(?) or C([) are used as they are and need no catalog.
      - C(*) matches across C(/) (Python C(fnmatch) rules), and matching is case-sensitive.
    type: list
    elements: str
  registry:
    description:
      - The registry host of O(repositories), such as C(registry.example.com) or C(127.0.0.1:5000).
      - Required with O(repositories).
    type: str
  exclude_repositories:
    description:
      - Glob patterns of repositories O(repositories) must not touch.
    type: list
    elements: str
  rules:
    description:
      - Ordered retention rules. Each rule selects tags; conditions inside one rule are ANDed.
      - A rule's tag selectors are a union, as every tag selector of the collection (and skopeo sync's) is -
        a tag matching any entry of O(rules[].names), O(rules[].prefix), O(rules[].glob) or O(rules[].regex)
        is selected unless an C(exclude_*) entry matches it. A rule takes one of these four kinds; a rule
        giving two is refused (in 1.0 a tag had to match every kind given), so no rule selects more than it did.
      - A tag matched by any V(keep) rule is kept whatever the order (keep beats delete). A tag matched only by
        V(delete) rules is condemned. Other tags get O(default_action).
      - Cannot be combined with the shorthands O(keep_latest), O(older_than) and O(match) (O(protect) and
        O(untagged) combine with rules).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the rule, shown in RV(plan) and in messages. Defaults to C(rules[N]).
        type: str
      action:
        description:
          - What happens to the tags this rule matches.
        type: str
        choices: [keep, delete]
        required: true
      names:
        description: Tags matched by exact name.
        type: list
        elements: str
      prefix:
        description: Tags matched by prefix.
        type: list
        elements: str
      glob:
        description: Tags matched by shell glob (case-sensitive).
        type: list
        elements: str
      regex:
        description: Tags matched by Python regular expression; the whole tag must match (always anchored).
        type: list
        elements: str
      exclude_names:
        description: Tags never matched by this rule, by exact name.
        type: list
        elements: str
      exclude_prefix:
        description: Tags never matched by this rule, by prefix.
        type: list
        elements: str
      exclude_glob:
        description: Tags never matched by this rule, by glob.
        type: list
        elements: str
      exclude_regex:
        description: Tags never matched by this rule, by full-match regular expression.
        type: list
        elements: str
      most_recent:
        description:
          - Keep rules only. Of the digests with a tag meeting the rule's other conditions, match the N newest by
            O(rules[].order_by). Counts digests, not tags, per repository; cosign tags never take a slot.
        type: int
      order_by:
        description:
          - How O(rules[].most_recent) ranks digests. V(age) uses the timestamp (unknown ages rank last),
            V(semver) the highest semantic-version tag, V(tag_name) the highest tag in string order.
        type: str
        choices: [age, semver, tag_name]
      older_than:
        description:
          - Match digests older than this duration (C(30d), C(12h), C(2w), C(1d12h)).
          - Every duration of this module is written this way, units C(w), C(d), C(h), C(m) (minutes), C(s),
            largest first. Units are case-insensitive (C(7D) is C(7d)) except C(M), refused, since C(6M) may be
            meant as six months; there is no month unit (write C(180d)).
        type: str
      newer_than:
        description: Match digests newer than this duration.
        type: str
      expires_after_label:
        description:
          - Delete rules only. Match digests whose label (or annotation) of this name holds a quay-style lifetime
            (C(2w), C(10d), C(12h)) that has run out, counted from the digest's timestamp, for example
            C(quay.expires-after).
        type: str
      untagged:
        description:
          - Select untagged digests that nothing owns instead of tags. Cannot be combined with tag selectors or
            O(rules[].most_recent).
        type: bool
        default: false
      unsigned:
        description:
          - Delete rules only. Match digests older than O(rules[].unsigned.grace) that have no valid signature under
            O(rules[].unsigned.verify), ANDed with the rule's other conditions. Keep rules still win, O(in_use) still
            protects, and the guardrails still apply.
          - Signatures are checked after the repositories are read and before planning, only for the digests this rule
            could condemn (past the grace, not kept by a keep rule, not in use), about 5 to 6 read requests per digest
            on Distribution 2.8; a digest inside the grace is never checked. Key files are read before any request.
          - RV(plan[].unsigned) says what was checked for each digest condemned so; RV(skipped_items) lists with
            V(unsigned_grace) the ones the grace spared and with V(signature_unknown) those whose signatures could not
            be read (they are kept).
        type: dict
        suboptions:
          verify:
            description:
              - The same block as M(ocireg.registry.registry_tag)'s O(ocireg.registry.registry_tag#module:verify)
                (V(keys), V(keyless), V(trusted_root), V(require), V(annotations), V(referrers), V(index)). A digest
                it accepts is signed; one it refuses is unsigned, a signature by another key or identity included.
            type: dict
          grace:
            description:
              - How long a new image has to get its signature before the rule may select it (C(7d), C(12h)), counted
                from its timestamp (O(timestamp_sources)). A digest of unknown age is kept (V(unknown_age)).
            type: str
  default_action:
    description:
      - What happens to tags no rule matches.
    type: str
    choices: [keep, delete]
    default: keep
  keep_latest:
    description:
      - Shorthand. Keep the N newest digests (of the tags matching O(match)) and delete the other matched tags,
        or with O(older_than) only those that are also older than it.
    type: int
  older_than:
    description:
      - Shorthand. Delete the tags (matching O(match)) whose digest is older than this duration, such as C(30d).
    type: str
  match:
    description:
      - Shorthand. Full-match regular expressions limiting O(keep_latest) and O(older_than) to some tags;
        alone, every matched tag is deleted. Default is every tag.
    type: list
    elements: str
  protect:
    description:
      - Full-match regular expressions of tags that are always kept (a keep rule that wins over everything).
    type: list
    elements: str
  in_use:
    description:
      - Images that run, which are never deleted whatever the rules say. A list of references
        (C(registry.example.com/team/app:1.4), C(registry.example.com/team/app@sha256:...)) and bare digests
        (C(sha256:...), matched in every repository of the run).
      - A digest in use is kept with every tag on it and with what it reaches (the children of an index, its
        signatures and other referrers, the subject of a referrer), as a kept tag keeps its digest. RV(plan[].in_use)
        names the references that keep an entry, and RV(skipped_items) says V(in_use) where a rule was overruled.
      - Tags are resolved from the tags the plan reads anyway, so this costs no request. A tag the repository no
        longer has is listed in RV(in_use.unresolved) with a warning, and pruning goes on (the image that runs under
        it cannot be known, and pulling that tag already fails); give the digests that run to protect them.
      - References are matched as C(docker pull) reads them (C(nginx) is C(docker.io/library/nginx:latest),
        C(index.docker.io) is C(docker.io), a port is part of the host). References to another registry or to a
        repository not in this run are counted in RV(in_use) and otherwise ignored; when not one reference names
        this registry (often the same registry under another name), a warning names the hosts they use.
      - A reference with a tag and a digest (C(registry.example.com/team/app:dev-1-rc@sha256:...)) protects the
        digest only; the tag is not looked up, so it is never unresolved and does not keep the image it names now.
        The P(ocireg.registry.images_in_use#filter) filter gives a Pod's container in this form when its status
        says which digest of the spec's tag it runs.
      - Runtime prefixes of a Pod's C(imageID) (C(docker-pullable://)) are accepted. To turn
        C(kubernetes.core.k8s_info) results, inventory variables or a file into this list, use the
        P(ocireg.registry.images_in_use#filter) filter (the C(ocireg.registry.retention) role does).
    type: raw
  quarantine:
    description:
      - An undo window, one of two kinds. O(quarantine.dest) copies each image away and then deletes it;
        O(quarantine.untag_for) with O(quarantine.state) untags it now and deletes it on a run after the window.
        Giving both, or neither, is refused in one line.
      - With O(quarantine.dest), before each deletion group (an image with what it owns, its index children, signatures and
        other referrers) is deleted, it is copied to O(quarantine.dest) with its referrers and cosign artifacts,
        byte-exact, and read back there (every digest of the group); only then is it deleted. C(quarantined) in
        RV(applied) says where each digest went. Restore one with M(ocireg.registry.registry_copy) and
        O(ocireg.registry.registry_copy#module:referrers=true)
        (docs/guide_retention.md, "How to undo a prune").
      - A group whose copy or read-back fails is not deleted; it is listed in RV(skipped_items) with the reason
        V(quarantine_failed) and one warning line saying why, and the rest of the run goes on.
      - Check mode writes nothing here either (no directory, no archive, no tag); C(quarantined) in RV(applied)
        says where each digest would go.
      - "Cost: the copy's requests (blob reads or cross-repository mounts, manifest reads and writes), one read-back
        per digest, and one tag list more per run (the checks before a DELETE run after the copy)."
    type: dict
    suboptions:
      dest:
        description:
          - Where condemned images go, as skopeo and regctl spell it. V(oci:PATH) (an OCI image layout directory,
            created if absent), V(oci-archive:PATH) (a tar of one) or a holding repository V(host/repository)
            (written with this task's credentials when it is on the same registry).
          - In a layout or archive an image is named C(REPOSITORY:TAG) (C(team/app:1.0), as M(ocireg.registry.registry_copy)
            exports), so one layout can hold several repositories; in a holding repository it keeps its tags. An image
            that had no tag is named C(untagged-<hex of its digest>). A holding repository shared by several
            repositories keeps one image per tag name (give each its own, or use a layout).
          - Give the layout or archive alone (no C(:NAME)) and a repository without tag or digest. A holding
            repository that this run prunes is refused before anything is written (its C(DELETE)s would remove
            the copies too); a catalog glob such as O(repositories=['*']) selects it too, so add it to O(exclude_repositories).
          - Mutually exclusive with O(quarantine.untag_for) and O(quarantine.state).
        type: str
      untag_for:
        description:
          - The other undo window. Each deletion group the plan condemns is not deleted but recorded in
            O(quarantine.state), then its tags are removed (as O(untag_kept_images) removes tags, per
            O(tag_delete_method), a tag C(DELETE) or the placeholder manifest described there). Its children,
            signatures and referrers stay, so re-tagging the digest with M(ocireg.registry.registry_tag) restores
            the image with all of it (docs/guide_retention.md, "How to undo a prune").
          - A later run (same options) deletes each recorded digest whose window has passed, as it deletes any
            group (with what it owns, after the same checks; a manifest already gone counts as deleted), then
            removes it from the state. A digest tagged again or reached by a kept tag is not deleted; it leaves
            the state as V(rescued). One in O(in_use) (or kept by a rule) is not deleted either but stays in the
            state, V(pending) with C(held_by), and is judged again on the next run. RV(deferred) says what happened
            to each.
          - Reading the result in this mode, RV(plan) and RV(summary) describe the policy, RV(deferred) the window.
            A condemned image has C(action=delete) in RV(plan) and counts in C(summary.delete), whether this run
            untags it (a new one) or deletes it (its window has passed). C(summary.applied.untag) counts the tags
            this run removed, C(summary.applied.delete) the manifests it deleted. Each image's C(delete_after) and
            C(status) are in RV(deferred).
          - To try the window without waiting, give a short one (V(1m)) on a test repository and run the task
            twice, a minute apart.
          - Switching a repository from O(quarantine.untag_for) to O(quarantine.dest) (or dropping
            O(quarantine)) leaves the entries of its state unjudged, their images untagged in the registry. Let
            them reach their window under O(quarantine.untag_for) first, or delete them by digest yourself; the
            state of a repository is read only when O(quarantine.untag_for) is given.
          - A catalog glob (O(repositories=['*'])) selects the O(quarantine.state) repository too, and it is
            refused; add it to O(exclude_repositories).
          - A duration, as O(older_than) writes it (V(7d), V(36h), V(2w)). Needs O(quarantine.state); refused with
            O(quarantine.dest) and with O(tag_delete_method=never).
        type: str
      state:
        description:
          - The repository, on the registry this task prunes, that holds the state of O(quarantine.untag_for),
            a path such as V(ops/prune-state) (V(host/path) is accepted when the host is this registry; another
            host is refused, so the credentials never travel). It must not be one of the pruned repositories.
          - It holds one small OCI artifact manifest per pruned repository (artifactType
            C(application/vnd.ocireg.prune-deferred.v1)), tagged with the repository path with C(/) as C(_) and a
            hash suffix (C(team_app-3f2a9c1e0b7d)). Its annotation C(io.ocireg.registry.prune-deferred.state) is a
            JSON document listing each untagged digest, its former tags, C(untagged_at), C(delete_after) (UTC) and
            the rules that condemned it. Nothing of this mode is written into a pruned repository but the untags;
            on a registry without tag C(DELETE) (Distribution 2.8) each untag is the placeholder manifest of
            O(tag_delete_method), which links the empty blob and leaves the placeholder's small manifest blob in
            storage (untagged, unreferenced) until the registry's garbage collection.
          - Each change of a state puts the new manifest under its tag, then deletes the previous one by digest, so
            the state repository keeps one manifest per pruned repository. A state left with no entry is deleted,
            its tag with it; the next run reads no state.
          - "Cost: one C(GET) of the state per pruned repository per run (a 404 when it has none), before the
            snapshot; when the state changed one C(PUT) and one C(DELETE) of the previous revision (no C(DELETE)
            when there was none, no C(PUT) when no entry is left), plus a C(HEAD) of the empty blob when no state
            was read, and its upload the first time. A run with nothing due and nothing new writes nothing. Each due digest
            is read like a tagged one (its manifest and referrers) and deleted like any other."
          - Check mode reads the state and reports what would be untagged and deleted; it writes nothing at all.
          - A state that cannot be read (unreachable, 401, 403) or is not a document this module wrote fails the
            task in one line before anything is written.
        type: str
  untagged:
    description:
      - V(delete) adds a rule deleting untagged digests that nothing owns.
      - The registry API cannot list untagged manifests, so over it this only concerns untagged manifests that a
        tag leads to and nothing owns; removing the rest is the registry's garbage collection job
        (C(--delete-untagged) on Distribution, see the C(ocireg.registry.retention) role).
    type: str
    choices: [keep, delete]
    default: keep
  timestamp_sources:
    description:
      - Where a digest's age comes from, tried in order; the first plausible time wins.
      - V(annotation) is the manifest annotation C(org.opencontainers.image.created), V(label) the config label of
        the same name, V(created) the image config's C(created); V(annotation:NAME) and V(label:NAME) name another key.
      - An index without a plausible annotation takes its newest child's time.
    type: list
    elements: str
    default: [annotation, label, created]
  on_unknown_age:
    description:
      - A digest a rule condemns but whose age is unknown is always kept and reported in RV(skipped_items).
        V(fail) also fails the task before anything is deleted.
    type: str
    choices: [keep, fail]
    default: keep
  referrers:
    description:
      - How referrers (signatures, SBOMs, attestations) are treated. V(follow_subject) keeps them while their
        subject stays and deletes them with it.
    type: str
    choices: [follow_subject]
    default: follow_subject
  tag_delete_method:
    description:
      - How a condemned tag is removed while its digest stays.
      - V(auto) uses the OCI tag C(DELETE) where the registry supports it, else pushes a unique tiny manifest
        under the tag and deletes that (CNCF Distribution 2.8); other tags never change.
      - V(dummy_manifest) always uses the second way. V(never) leaves such tags in place (RV(skipped_items) says
        C(tag_delete_unsupported)).
    type: str
    choices: [auto, dummy_manifest, never]
    default: auto
  max_deletions:
    description:
      - Fail before deleting anything when the plan deletes more digests than this, over all repositories.
    type: int
  max_delete_ratio:
    description:
      - Fail before deleting anything when the plan deletes more than this share (0 to 1) of a repository's digests.
    type: float
  min_keep:
    description:
      - Fail before deleting anything when the plan would leave a repository it changes with fewer tagged digests.
    type: int
  allow_empty_repository:
    description:
      - By default the task fails before anything is written when the plan would leave a repository with no tagged
        digest or delete every digest it has (for example O(older_than=1d) over a repository whose images are all
        old); the message shows the plan's counts.
      - V(true) allows such a plan, for a repository you really mean to empty.
    type: bool
    default: false
  untag_kept_images:
    description:
      - By default a digest that stays keeps every tag on it, so C(protect=prod) also keeps the other names of the
        image C(prod) runs (such as its version tag).
      - V(true) removes condemned tags from digests that stay (tag-level retention, the behaviour of 0.1.0).
    type: bool
    default: false
  missing_repository:
    description:
      - What happens when a repository of O(repository) or O(repositories) does not exist on the registry.
      - V(fail) (the default) fails the task naming it, before anything is written; V(warn) gives a warning and
        prunes the other repositories, for example with catalog globs that may list a repository being removed.
    type: str
    choices: [fail, warn]
    default: fail
  failed_repository:
    description:
      - What happens when a repository cannot be read or written (an error answer, a timeout, a denied request).
      - Either way that repository is left out and listed in RV(failed_repositories) with its error, and the other
        repositories are still planned and applied, so one broken repository does not stop retention of a registry.
      - V(fail) (the default) then fails the task at the end, naming every failed repository; V(warn) gives a
        warning instead.
    type: str
    choices: [fail, warn]
    default: fail
  plan_detail:
    description:
      - How much of the plan RV(plan) returns.
      - V(changes) (the default) returns the entries that change something (V(delete), V(untag)) and the kept digests
        with a RV(skipped_items) entry (unknown age, a kept image's tags), which is what a person has to read. A repository of
        10,000 tags where 40 digests go returns 40 entries, and C(-v) output and AWX job logs stay readable.
        C(summary.by_repository) still counts every action.
      - V(full) returns one entry per digest, kept ones included.
      - The diff (with C(--diff)) is exact either way.
    type: str
    choices: [changes, full]
    default: changes
  grace_period:
    description:
      - Nothing younger than this duration is deleted, whatever the rules say (RV(skipped_items) says C(grace_period)).
      - The default protects images pushed during the last hour, whose tags may still be on their way.
    type: str
    default: 1h
  max_concurrency:
    description:
      - How many requests run at the same time while reading tags and manifests (1 to 64).
      - One bound for the whole run. With several repositories they are read concurrently and share these requests
        fairly, so a slow repository holds at most its share.
    type: int
    default: 8
extends_documentation_fragment:
  - ocireg.registry.registry
  - ocireg.registry.registry.action_group
attributes:
  check_mode:
    support: full
    description:
      - The dry run. Reads everything a real run reads and sends no write request; RV(plan) and RV(applied) are
        what a real run would do.
  diff_mode:
    support: full
    description: Shows each repository's tag -> digest map before and after.
author:
  - ocireg.registry contributors (@ocireg)
seealso:
  - module: ocireg.registry.registry_tag
    description: Remove single tags, or promote them.
  - module: ocireg.registry.registry_manifest_info
    description: Look at an image's timestamps, labels and referrers before writing rules.
  - name: Retention guide
    description: Rules, guardrails and the opt-ins, with examples.
    link: https://github.com/ocireg/registry/blob/main/docs/guide_retention.md
  - name: Distribution garbage collection
    description: Why deleted manifests still use disk until the registry collects garbage.
    link: https://distribution.github.io/distribution/about/garbage-collection/
notes:
  - The action group C(ocireg.registry.registry) lets you set the connection options once in C(module_defaults).
  - Deleting needs the C(delete) permission (Distribution needs C(storage.delete.enabled=true)).
  - The registry API has no compare-and-swap for deletes. The checks before each deletion narrow the race with
    concurrent pushes to a moment; schedule retention when few pushes happen.
  - "Requests: the plan reads the tag list, one C(GET) per tag and one image config per distinct image; a real
    run adds one look before its first C(DELETE) (the tag list and a C(HEAD) of each kept tag), then one tag
    list per deletion group (a C(HEAD) only for names not seen before) and the C(DELETE)s: about
    tags + digests + deletions in all, at any latency (300 tags over 240 digests, keeping 10: 1,015 requests)."
  - A default run writes nothing but the C(DELETE)s and untags of its plan. With O(prune_lease=true) it also
    writes a lease tag C(ocireg-prune-lease-<expiry>-<hex>) while it deletes (see O(prune_lease)).
"""

EXAMPLES = r"""
- name: Keep the 10 newest builds of each dev branch tag, delete dev tags older than 30 days
  ocireg.registry.registry_prune:
    repository: registry.example.com/team/app
    match: ['dev-.*']
    keep_latest: 10
    older_than: 30d
    protect: ['latest', 'v[0-9]+(\.[0-9]+)*']

- name: Full rules over every team repository, with guardrails
  ocireg.registry.registry_prune:
    registry: registry.example.com
    repositories: ['team/*']
    exclude_repositories: ['team/base-images']
    rules:
      - name: releases
        action: keep
        regex: ['v[0-9]+\.[0-9]+\.[0-9]+']
      - name: recent-main
        action: keep
        prefix: [main-]
        most_recent: 20
      - name: pull-requests
        action: delete
        prefix: [pr-]
        older_than: 14d
      - name: expired
        action: delete
        expires_after_label: quay.expires-after
    max_deletions: 500
    max_delete_ratio: 0.5
    min_keep: 3
  register: pruned

- name: What runs in the cluster (Pods report the digests their nodes pulled)
  kubernetes.core.k8s_info:
    kind: Pod
  register: running_pods

- name: Plan the prune of builds older than 30 days, never what runs (check mode, nothing written)
  ocireg.registry.registry_prune:
    repository: registry.example.com/team/app
    older_than: 30d
    in_use: "{{ running_pods | ocireg.registry.images_in_use }}"
  check_mode: true
  register: planned

- name: Optional, stricter than the warning - stop before deleting when an in-use tag no longer resolves
  ansible.builtin.assert:
    that: planned.in_use.unresolved | length == 0
    fail_msg: "in use but gone from the registry: {{ planned.in_use.unresolved | join(', ') }}"

- name: Delete builds older than 30 days, never what runs
  ocireg.registry.registry_prune:
    repository: registry.example.com/team/app
    older_than: 30d
    in_use: "{{ running_pods | ocireg.registry.images_in_use }}"
  register: pruned

- name: Untag now, delete a week later (a nightly run deletes what has waited out the window)
  ocireg.registry.registry_prune:
    repository: registry.example.com/team/app
    older_than: 30d
    quarantine:
      untag_for: 7d
      state: ops/prune-state
  register: pruned

- name: Show the dry run's plan first
  ocireg.registry.registry_prune:
    repository: registry.example.com/team/app
    older_than: 90d
  check_mode: true
  diff: true
  register: dry_run

- name: How many digests would go
  ansible.builtin.debug:
    msg: "{{ dry_run.summary.delete }} digests, {{ dry_run.summary.tags_removed }} tags"
"""

RETURN = r"""
plan:
  description:
    - Per digest of every repository, ordered by repository then digest, what the plan does.
    - With O(plan_detail=changes) (the default) only the entries that delete or untag, and kept digests with a
      RV(skipped_items) entry; with O(plan_detail=full) one entry per digest.
  returned: always
  type: list
  elements: dict
  contains:
    repository:
      description: C(host/repository).
      type: str
    digest:
      description: The manifest digest.
      type: str
    media_type:
      description: The manifest media type.
      type: str
    tags:
      description: Every tag on the digest when planned.
      type: list
      elements: str
    action:
      description: V(keep), V(untag) (only RV(plan[].untag_tags) are removed) or V(delete).
      type: str
    untag_tags:
      description: Tags removed from a digest that stays.
      type: list
      elements: str
    matched_rules:
      description: Per rule (V(default_action) for tags no rule matched), its action and the tags it matched.
      type: list
      elements: dict
    timestamp:
      description: The digest's time (RFC 3339 UTC), V(null) when unknown.
      type: str
    timestamp_source:
      description: Which O(timestamp_sources) entry gave the time.
      type: str
    timestamp_via:
      description: For an index that took its newest child's time, that child's digest.
      type: str
    unknown_age_reason:
      description: V(missing), V(unparsable), V(before_2000), V(future) or V(children_unknown) when the time is unknown.
      type: str
    reachable_from:
      description: Kept tags that reach this digest (as an index child, referrer, subject or cosign artifact).
      type: list
      elements: str
    cascaded:
      description: Digests deleted with this one (children, referrers, cosign artifacts), with their relation.
      type: list
      elements: dict
    cascaded_from:
      description: The deleted digests this one is deleted with.
      type: list
      elements: str
    delete_method:
      description: V(manifest_delete) for a deletion; the tag removal method for V(untag).
      type: str
    fallback_index:
      description: The C(sha256-<hex>) fallback index tag listing this referrer, if any.
      type: str
    in_use:
      description: The O(in_use) references that keep this digest (it runs, or what runs reaches it).
      type: list
      elements: str
    unsigned:
      description:
        - For a digest an O(rules[].unsigned) rule deletes, why (V(null) otherwise) - C(reason) V(unsigned), C(rule),
          C(grace), and C(checked), the verify gate's one line saying what was looked for and why each signature found
          was refused (for example a signature by another key).
      type: dict
  sample:
    - repository: registry.example.com/team/app
      digest: sha256:4f2c6b0a0c1e8d3f3a1c2b9e8f7d6c5b4a3928171615141312111009080706a5
      media_type: application/vnd.oci.image.manifest.v1+json
      tags: [dev-41]
      action: delete
      untag_tags: []
      matched_rules: [{rule: older_than, action: delete, tags: [dev-41]}]
      timestamp: "2026-01-02T03:04:05Z"
      timestamp_source: label:org.opencontainers.image.created
      timestamp_via: null
      unknown_age_reason: null
      reachable_from: []
      cascaded: []
      cascaded_from: []
      delete_method: manifest_delete
      fallback_index: null
      in_use: []
      unsigned: null
skipped_items:
  description:
    - What the rules asked for that was not done, and why. O(on_unknown_age) aside, a skip never fails the task.
    - Named so because Ansible reads a result key C(skipped) as "the task was skipped".
    - Reasons are V(unknown_age), V(grace_period), V(shared_digest) (other tags keep the digest, only the condemned
      tags are removed), V(reachable) (a kept tag reaches the digest), V(in_use) (O(in_use) names the image,
      which is kept with all its tags), V(unsigned_grace) (an O(rules[].unsigned) rule selects it but it is inside
      the grace; its signatures were not checked), V(signature_unknown) (its signatures could not be read),
      V(tag_delete_unsupported) and V(changed_since_plan).
  returned: always
  type: list
  elements: dict
  sample:
    - repository: registry.example.com/team/app
      digest: sha256:1c2f9dc4d6c1f2f4b8e8a3b2d1c0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2
      tags: [dev-7]
      reason: unknown_age
      message: "rule(s) 'older_than' condemn tag(s) dev-7 but its age is unknown (before_2000: ...); kept. ..."
summary:
  description:
    - Counts. V(keep), V(untag), V(delete) and V(delete_cascaded) count plan entries (digests); V(tags_before),
      V(tags_after) and V(tags_removed) count tags; V(skipped) counts skips per reason; V(applied) counts what was
      done (in check mode, what would be done).
    - V(by_repository) gives, per repository, the digests kept, untagged and deleted and the tags removed, whatever
      O(plan_detail) says; V(failed_repositories) counts RV(failed_repositories).
  returned: always
  type: dict
  sample:
    repositories: 1
    digests: 12
    keep: 8
    untag: 1
    delete: 3
    delete_cascaded: 2
    tags_before: 14
    tags_after: 10
    tags_removed: 4
    skipped: {unknown_age: 1}
    violations: 0
    applied: {delete: 3, untag: 1}
    by_repository: {registry.example.com/team/app: {keep: 8, untag: 1, delete: 3, tags_removed: 4}}
    failed_repositories: 0
applied:
  description:
    - The writes done (in check mode, that would be done), in order. Deletions of one cascade group come
      index before children and referrer before subject.
    - C(quarantined) is where a deletion's quarantine copy is (O(quarantine)), C(DEST:REPOSITORY:TAG) or C(DEST:TAG)
      for an image, C(DEST@DIGEST) for what came with it (children, referrers); V(null) without O(quarantine) and for
      untags.
    - C(method) is V(manifest_delete) for a deletion (in check mode too). For an untag it is how the tag was removed,
      V(tag_delete) or V(dummy_manifest); in check mode, where the registry is not asked, the O(tag_delete_method)
      asked for (V(auto) by default).
    - C(already_gone) is V(true) for a deletion whose C(DELETE) found the manifest already gone (deleted by
      someone else since the plan was made). It counts as removed, as in every path of this collection that
      deletes.
  returned: always
  type: list
  elements: dict
  sample:
    - repository: registry.example.com/team/app
      action: delete
      digest: sha256:4f2c6b0a0c1e8d3f3a1c2b9e8f7d6c5b4a3928171615141312111009080706a5
      media_type: application/vnd.oci.image.manifest.v1+json
      tags: [dev-41]
      cascaded_from: []
      method: manifest_delete
      fallback_index_updated: null
      already_gone: false
      quarantined: oci:/backups/prune:team/app:dev-41
deferred:
  description:
    - With O(quarantine.untag_for), one item per entry of the state (and per digest untagged now), with
      C(repository), C(digest), C(tags) (the tags it had), C(untagged_at) and C(delete_after) (UTC), C(rules)
      (what condemned it), C(media_type) and C(status).
    - C(status) is V(untagged) (recorded and untagged by this run; in check mode, would be), V(pending) (its window
      has not passed, or something holds it, so it stays in the state), V(deleted) (deleted by this run with what
      it owns, listed in RV(applied); C(already_gone) when it was gone already) or V(rescued) (tagged again, or
      reached by a kept tag, so not deleted and dropped from the state, that tag owning it now; C(rescued_by) says
      which).
    - C(held_by) says why a V(pending) entry whose window may have passed was not deleted, V(in use) (named in
      O(in_use)), V(kept by the policy) (a keep rule for untagged digests) or V(reached by DIGEST) (an untagged
      image that is kept). Such an entry stays in the state with its C(delete_after) and is judged again on every
      run, since it has no tag and no later prune but this state could find it. V(null) otherwise.
  returned: when O(quarantine.untag_for) is set
  type: list
  elements: dict
  sample:
    - repository: registry.example.com/team/app
      digest: sha256:4f2c6b0a0c1e8d3f3a1c2b9e8f7d6c5b4a3928171615141312111009080706a5
      tags: [dev-41]
      untagged_at: "2026-05-02T03:00:00Z"
      delete_after: "2026-05-09T03:00:00Z"
      rules: [match]
      media_type: application/vnd.oci.image.manifest.v1+json
      status: pending
      already_gone: false
      rescued_by: null
      held_by: in use
gc_required:
  description:
    - V(true) when manifests were deleted (in check mode, would be). Their blobs use disk until the registry's
      garbage collection runs.
  returned: always
  type: bool
  sample: true
repositories:
  description: The repositories the policy was applied to, C(host/repository), sorted.
  returned: always
  type: list
  elements: str
  sample: [registry.example.com/team/app]
policy:
  description: The compiled policy, with the shorthands turned into rules.
  returned: always
  type: dict
  sample:
    rules: [{name: older_than, action: delete, older_than: 30d}]
    default_action: keep
    timestamp_sources: [annotation:org.opencontainers.image.created, label:org.opencontainers.image.created, created]
    on_unknown_age: keep
    referrers: follow_subject
    tag_delete_method: auto
    grace_period: 1h
    max_deletions: null
    max_delete_ratio: null
    min_keep: null
    allow_empty_repository: false
    untag_kept_images: false
plan_detail:
  description: The O(plan_detail) the RV(plan) was shaped with.
  returned: always
  type: str
  sample: changes
failed_repositories:
  description:
    - Repositories that could not be read (left out of the plan) or whose writes failed part-way (what was done
      before is in RV(applied)); see O(failed_repository).
  returned: always
  type: list
  elements: dict
  contains:
    repository:
      description: C(host/repository).
      type: str
    error:
      description: What went wrong, in one line.
      type: str
  sample:
    - repository: registry.example.com/team/broken
      error: "the registry answered 500 Internal Server Error for GET /v2/team/broken/tags/list"
in_use:
  description: What O(in_use) protected, and what it could not match.
  returned: when O(in_use) is given
  type: dict
  contains:
    references:
      description: How many entries O(in_use) had.
      type: int
    protected:
      description: Digests kept because they run (per repository; what they reach is in RV(plan[].in_use)).
      type: int
    unresolved:
      description: In-use tags the repository no longer has; what runs under them is not protected.
      type: list
      elements: str
    other_registry:
      description: References to another registry, ignored.
      type: int
    other_repository:
      description: References to a repository of this registry that this run does not prune, ignored.
      type: int
    not_seen:
      description: In-use digests no planned repository holds among what the plan read; this run cannot delete them.
      type: int
  sample: {references: 6, protected: 3, unresolved: [registry.example.com/team/app:v0], other_registry: 2,
           other_repository: 0, not_seen: 0}
violations:
  description: Guardrails the plan breaks; the task then fails and nothing is written.
  returned: always
  type: list
  elements: str
  sample: []
diff:
  description:
    - Per repository, the whole tag -> digest map before and after (every tag, exact).
    - Returned only in diff mode (C(--diff), or C(diff) set to V(true) on the task), because for a large repository
      it is the largest part of the result.
  returned: when diff mode is on
  type: dict
  sample:
    before: {registry.example.com/team/app: {dev-41: "sha256:4f2c...", latest: "sha256:9b2a..."}}
    after: {registry.example.com/team/app: {latest: "sha256:9b2a..."}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import (
    RegistryTask,
    connection_argument_spec,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ConflictError,
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
    normalize_registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.apply import (
    ApplyError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.in_use import (
    parse_in_use,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import (
    POLICY_KEYS,
    build_policy,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.deferred import (
    undo_window,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import (
    FAILED_REPOSITORY,
    MISSING_REPOSITORY,
    PLAN_DETAIL,
    failed_repositories,
    prune,
)

_TAG_LISTS = ("names", "prefix", "glob", "regex", "exclude_names", "exclude_prefix", "exclude_glob", "exclude_regex")


def rule_spec() -> dict:
    """Argument spec of one entry of ``rules`` (validated further by the policy model)."""
    spec = {
        "name": {"type": "str"},
        "action": {"type": "str", "choices": ["keep", "delete"], "required": True},
        "most_recent": {"type": "int"},
        "order_by": {"type": "str", "choices": ["age", "semver", "tag_name"]},
        "older_than": {"type": "str"},
        "newer_than": {"type": "str"},
        "expires_after_label": {"type": "str"},
        "untagged": {"type": "bool", "default": False},
        # verify is checked by the verify gate's own parser (the block registry_tag takes), which words its errors.
        "unsigned": {"type": "dict", "options": {"verify": {"type": "dict"}, "grace": {"type": "str"}}},
    }
    spec.update({key: {"type": "list", "elements": "str"} for key in _TAG_LISTS})
    return spec


def policy_params(params: dict) -> dict:
    """The policy options, with the unset rule keys Ansible fills with None left out."""
    options = {key: params.get(key) for key in POLICY_KEYS}
    if options["rules"] is not None:
        options["rules"] = [{k: v for k, v in rule.items() if v is not None} for rule in options["rules"]]
    return options


def target(params: dict) -> tuple[str, list[str]]:
    """``(registry host, repository names or patterns)`` from ``repository`` or ``registry`` + ``repositories``."""
    if params["repository"]:
        reference = Reference.parse(params["repository"])
        if reference.tag is not None or reference.digest is not None:
            raise InvalidInputError(
                f"repository {params['repository']!r} carries a tag or digest: give only host/repository; "
                "rules select the tags")
        return reference.registry, [reference.repository]
    return normalize_registry(params["registry"]), list(params["repositories"])


def argument_spec() -> dict:
    """The module's options; roles/retention's list of valid policy keys is checked against it."""
    return {
        "repository": {"type": "str"},
        "repositories": {"type": "list", "elements": "str"},
        "registry": {"type": "str"},
        "exclude_repositories": {"type": "list", "elements": "str"},
        "rules": {"type": "list", "elements": "dict", "options": rule_spec()},
        "default_action": {"type": "str", "choices": ["keep", "delete"], "default": "keep"},
        "keep_latest": {"type": "int"},
        "older_than": {"type": "str"},
        "match": {"type": "list", "elements": "str"},
        "protect": {"type": "list", "elements": "str"},
        "in_use": {"type": "raw"},  # checked by parse_in_use, which says how to build the list
        "quarantine": {"type": "dict", "options": {"dest": {"type": "str"}, "untag_for": {"type": "str"},
                                                   "state": {"type": "str"}}},
        "untagged": {"type": "str", "choices": ["keep", "delete"], "default": "keep"},
        "timestamp_sources": {"type": "list", "elements": "str",
                              "default": ["annotation", "label", "created"]},
        "on_unknown_age": {"type": "str", "choices": ["keep", "fail"], "default": "keep"},
        "referrers": {"type": "str", "choices": ["follow_subject"], "default": "follow_subject"},
        "tag_delete_method": {"type": "str", "choices": ["auto", "dummy_manifest", "never"], "default": "auto"},
        "max_deletions": {"type": "int"},
        "max_delete_ratio": {"type": "float"},
        "min_keep": {"type": "int"},
        "allow_empty_repository": {"type": "bool", "default": False},
        "untag_kept_images": {"type": "bool", "default": False},
        "missing_repository": {"type": "str", "choices": list(MISSING_REPOSITORY), "default": "fail"},
        "failed_repository": {"type": "str", "choices": list(FAILED_REPOSITORY), "default": "fail"},
        "plan_detail": {"type": "str", "choices": list(PLAN_DETAIL), "default": "changes"},
        "grace_period": {"type": "str", "default": "1h"},
        "max_concurrency": {"type": "int", "default": 8},
        **connection_argument_spec(),
    }


def main() -> None:
    """Plan retention over the selected repositories, apply it (or not, in check mode), return the plan."""
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("repository", "repositories"), ("repository", "registry")],
        required_one_of=[("repository", "repositories")],
        required_by={"repositories": "registry", "exclude_repositories": "repositories"},
        supports_check_mode=True,
    )
    task = RegistryTask(module)
    factory = task.factory
    params = module.params
    with task.errors():
        policy = build_policy(policy_params(params))
        host, names = target(params)
        in_use = parse_in_use(params["in_use"]) if params["in_use"] is not None else None
        quarantine, deferred = undo_window(
            params["quarantine"], lambda reference: factory.repository(reference, for_write=not module.check_mode),
            concurrency=params["max_concurrency"])
        try:
            outcome = prune(factory.registry(host), policy, names, exclude=params["exclude_repositories"] or (),
                            check_mode=module.check_mode, max_concurrency=params["max_concurrency"],
                            missing_repository=params["missing_repository"], plan_detail=params["plan_detail"],
                            diff=module._diff, prune_lease=params["prune_lease"],  # pylint: disable=protected-access
                            in_use=in_use, quarantine=quarantine, deferred=deferred)
        except ConflictError as err:
            # Guardrails: nothing was written; return the plan so the user can see why.
            data = dict(err.partial or {})
            data.pop("changed", None)
            for text in data.pop("warnings", []):
                task.warn(text)
            task.fail_error(err, partial=data)
        except ApplyError as err:
            task.fail_error(err, applied=err.result.applied, skipped_items=err.result.skipped)
    for text in outcome.warnings:
        task.warn(text)
    result = outcome.to_result(params["plan_detail"], diff=module._diff,  # pylint: disable=protected-access
                               word=task.describe)
    failure = failed_repositories(outcome.failed, params["failed_repository"], word=task.describe,
                                  of=len(outcome.repositories))
    if failure is not None:
        # The other repositories were planned and applied: the result says what was done.
        task.fail(str(failure), **result)
    for item in outcome.failed:
        task.warn(f"repository {item['repository']} was not pruned: {task.describe(item['error'])}")
    task.exit(result)


if __name__ == "__main__":
    main()
