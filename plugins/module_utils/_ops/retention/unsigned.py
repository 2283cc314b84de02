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

A check that fails with :class:`VerificationError` is "unsigned" (its one line, which says what
was looked for and why each signature found was refused, is what the plan shows). Any other error
(a timeout, a refused read) leaves the digest's signing unknown, and the planner keeps it.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    RegistryError,
    VerificationError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    check_concurrency,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    SignatureCheck,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import (
    RetentionPolicy,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.check import (
    make_verifier,
)

Verifier = Callable[[Any, str], dict[str, Any]]


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


def check_one(verifier: Verifier, repo: Any, digest: str) -> SignatureCheck:
    """Check ``digest``: signed, unsigned (the verify gate's one line), or unknown (why it could not be read)."""
    try:
        return SignatureCheck(True, signed_detail(verifier(repo, digest)))
    except VerificationError as exc:
        return SignatureCheck(False, exc.message)
    except RegistryError as exc:
        return SignatureCheck(None, exc.message)


def check_signatures(repos: Mapping[str, Any], candidates: Mapping[str, Mapping[str, tuple[str, ...]]],
                     verifiers: Mapping[str, Verifier], *, max_concurrency: int | None = None
                     ) -> dict[str, dict[str, dict[str, SignatureCheck]]]:
    """Check each candidate digest under each unsigned rule that could condemn it, at most
    ``max_concurrency`` at once; ``{repository: {digest: {rule: SignatureCheck}}}``.

    ``candidates`` is what :func:`~.plan.unsigned_candidates` gives; an empty one sends nothing.
    """
    jobs = sorted((repo, digest, name) for repo, found in candidates.items() for digest, names in found.items()
                  for name in names)
    if not jobs:
        return {}
    workers = check_concurrency(max_concurrency)

    def one(job: tuple[str, str, str]) -> SignatureCheck:
        repo, digest, name = job
        return check_one(verifiers[name], repos[repo], digest)

    if len(jobs) == 1 or workers == 1:
        results = [one(job) for job in jobs]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="ocireg-unsigned") as pool:
            results = list(pool.map(one, jobs))
    out: dict[str, dict[str, dict[str, SignatureCheck]]] = {}
    for (repo, digest, name), check in zip(jobs, results):
        out.setdefault(repo, {}).setdefault(digest, {})[name] = check
    return out
