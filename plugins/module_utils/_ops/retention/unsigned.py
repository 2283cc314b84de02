# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Expiring unsigned images: the signature checks an ``unsigned`` rule needs, made before planning.

The planner stays pure: :func:`~.plan.unsigned_candidates` names the digests an unsigned rule
could condemn (past its grace, not kept by a keep rule, not in use), :func:`check_signatures`
reads their signatures with the verify gate as it is (``_ops/verify/check.py``: the cosign tag
scheme, OCI referrers, sigstore bundles, keys and keyless identities), and the planner is given
the verdicts. Nothing else is read, so a prune without an unsigned rule, or a repository where
everything is kept, sends no request for it. Reads only: check mode is unaffected.

What the snapshot read is not read again (:func:`already_read`): an image's manifest, the tag list
(so an absent ``.sig``/``.att`` tag costs nothing) and each digest's referrers. A check then sends
only what the snapshot did not keep: a present cosign tag's manifest (by the digest listed), a
signature referrer's manifest, and the signature blobs.

A check that fails with :class:`VerificationError` is "unsigned" (its one line, which says what
was looked for and why each signature found was refused, is what the plan shows). Any other error
(a timeout, a refused read) leaves the digest's signing unknown, and the planner keeps it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    RegistryError,
    VerificationError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    check_concurrency,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ManifestRecord,
    RepositorySnapshot,
    SignatureCheck,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import (
    RetentionPolicy,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.check import (
    AlreadyRead,
    make_verifier,
)

#: ``(repository, digest, already) -> verified`` (``already``: an :class:`AlreadyRead` or None).
Verifier = Callable[[Any, str, "AlreadyRead | None"], dict[str, Any]]


def unsigned_verifiers(policy: RetentionPolicy) -> dict[str, Verifier]:
    """One verifier per unsigned rule (rule name -> ``(repository, digest) -> verified``).

    Key files and trusted roots are read here, once: call it before any request so a missing
    key file is refused before the registry is touched.
    """
    out: dict[str, Verifier] = {}
    for rule in policy.rules:
        if rule.unsigned is None:
            continue
        verifier = make_verifier(rule.unsigned.raw)
        if verifier is not None:
            out[rule.name] = verifier
    return out


def signed_detail(verified: Mapping[str, Any]) -> str:
    """One line naming who signed what a verify call accepted."""
    signers = []
    for item in verified.get("verified", ()):
        for signature in item.get("signatures", ()):
            signers.append(str(signature.get("identity") or signature.get("key")))
    return "signed by " + ", ".join(sorted(set(signers))) if signers else "verified"


def _descriptor(record: ManifestRecord) -> Descriptor:
    return Descriptor(record.media_type, record.digest, record.size, annotations=dict(record.annotations),
                      artifact_type=record.artifact_type)


def already_read(snapshot: RepositorySnapshot) -> AlreadyRead:
    """What ``snapshot`` read, as the verify gate takes it (pure).

    Every manifest the snapshot holds had its referrers listed (an empty list when none), so each
    digest's referrers are known unless a listed referrer could not be read (then the gate asks).
    """
    records = snapshot.manifests
    referrers = {}
    for digest in records:
        listed = snapshot.referrers.get(digest, ())
        if all(item in records for item in listed):
            referrers[digest] = tuple(_descriptor(records[item]) for item in listed)
    # An index is left out (the gate reads it: its children's descriptors decide what is verified), also
    # one whose media type says nothing but which has children.
    return AlreadyRead(images={digest: _descriptor(record) for digest, record in records.items()
                               if not record.is_index and record.media_type},
                       tags=dict(snapshot.tags), referrers=referrers)


def check_one(verifier: Verifier, repo: Any, digest: str, already: AlreadyRead | None = None) -> SignatureCheck:
    """Check ``digest``: signed, unsigned (the verify gate's one line), or unknown (why it could not be read).

    ``already`` is what the caller read of ``repo`` (:func:`already_read`), handed to the gate.
    """
    try:
        return SignatureCheck(True, signed_detail(verifier(repo, digest, already)))
    except VerificationError as exc:
        return SignatureCheck(False, exc.message)
    except RegistryError as exc:
        return SignatureCheck(None, exc.message)


def check_signatures(repos: Mapping[str, Any], candidates: Mapping[str, Mapping[str, tuple[str, ...]]],
                     verifiers: Mapping[str, Verifier], *, snapshots: Sequence[RepositorySnapshot] = (),
                     max_concurrency: int | None = None) -> dict[str, dict[str, dict[str, SignatureCheck]]]:
    """Check each candidate digest under each unsigned rule that could condemn it, at most
    ``max_concurrency`` at once; ``{repository: {digest: {rule: SignatureCheck}}}``.

    ``candidates`` is what :func:`~.plan.unsigned_candidates` gives; an empty one sends nothing.
    ``snapshots`` are the repositories as read for the plan: what they hold is not read again.
    """
    jobs = sorted((repo, digest, name) for repo, found in candidates.items() for digest, names in found.items()
                  for name in names)
    if not jobs:
        return {}
    workers = check_concurrency(max_concurrency)
    already = {snapshot.repository: already_read(snapshot) for snapshot in snapshots
               if snapshot.repository in candidates}

    def one(job: tuple[str, str, str]) -> SignatureCheck:
        repo, digest, name = job
        return check_one(verifiers[name], repos[repo], digest, already.get(repo))

    if len(jobs) == 1 or workers == 1:
        results = [one(job) for job in jobs]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="ocireg-unsigned") as pool:
            results = list(pool.map(one, jobs))
    out: dict[str, dict[str, dict[str, SignatureCheck]]] = {}
    for (repo, digest, name), check in zip(jobs, results):
        out.setdefault(repo, {}).setdefault(digest, {})[name] = check
    return out
