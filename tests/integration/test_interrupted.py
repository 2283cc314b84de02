"""Interrupted work converges: a copy cut or killed mid-way, then run again, moves only what is missing.

The interruptions are real: :class:`~tests.rig.fault_proxy.FaultProxy` sits in
front of a real Distribution registry and, after a number of blob uploads,
resets every further one (the client gives up) or stalls it while the test
kills the whole ``ansible-playbook`` process group with SIGKILL. What was
committed before the cut is read from the real registry, not from the
client, and the re-run must report exactly the remaining transfers.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import CopyOptions, copy_image
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import RegistryError, TransportError
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import is_lease_tag
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import failed_repositories, prune
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
from tests.rig import images
from tests.rig.fault_proxy import FaultProxy, proxy_pool
from tests.rig.images import RawPuller, RawPusher
from tests.rig.playbook import BIN_DIR, PlaybookRunner, as_plays

#: Four layers of different sizes: with concurrency 1 the copy order (biggest first) is known.
IMAGE = images.make_image("interrupted", layers=[images.make_layer(f"interrupted-{n}", 64 * 1024 * (n + 1))
                                                 for n in range(4)])
UPLOADS = r"/blobs/uploads/[^/]+$"  # the PUT that commits a blob (not the POST that opens the session)
BEFORE_CUT = 2


@pytest.fixture
def proxies() -> Iterator[Callable[..., FaultProxy]]:
    """``proxies(registry, **options)``: a FaultProxy in front of ``registry`` (stopped at teardown)."""
    with proxy_pool() as start:
        yield start


def client(host: str) -> Registry:
    return Registry(host, TransportOptions(plain_http=True, retries=2, timeout=(5.0, 10.0), sleep=lambda _s: None))


def present_blobs(registry, name: str) -> set[str]:
    """The image's blobs the real registry holds in repository ``name``."""
    return {blob.digest for blob in IMAGE.blobs()
            if requests.head(f"{registry.url}/v2/{name}/blobs/{blob.digest}", timeout=10).status_code == 200}


def assert_cut_cleanly(registry, name: str) -> set[str]:
    """Some blobs made it, the tag did not; return the blobs that did."""
    present = present_blobs(registry, name)
    assert len(present) == BEFORE_CUT, present
    assert RawPuller.for_registry(registry).head_manifest(name, "v1").status_code == 404  # no dangling tag
    return present


def test_a_copy_cut_after_two_blobs_resumes_with_only_the_rest(plain_registry, registry_factory, proxies):
    RawPusher.for_registry(plain_registry).push("src/app", IMAGE, tag="v1")
    dest_registry = registry_factory()
    proxy = proxies(dest_registry)
    proxy.add("reset", method="PUT", path=UPLOADS, after=BEFORE_CUT, times=None)
    with pytest.raises(TransportError):
        copy_image(client(plain_registry.host).repository("src/app"), "v1", client(proxy.host).repository("dst/app"),
                   ["v1"], CopyOptions(concurrency=1))
    assert proxy.counts()["reset"] >= 1
    present = assert_cut_cleanly(dest_registry, "dst/app")
    missing = [blob for blob in IMAGE.blobs() if blob.digest not in present]

    result = copy_image(client(plain_registry.host).repository("src/app"), "v1",
                        client(dest_registry.host).repository("dst/app"), ["v1"], CopyOptions(concurrency=1))
    assert result.copied["blobs"] == len(missing)
    assert result.copied["bytes"] == sum(blob.size for blob in missing)
    assert result.already_present["blobs"] == BEFORE_CUT
    assert RawPuller.for_registry(dest_registry).pull("dst/app", "v1").digest == IMAGE.digest
    print(f"FIGURES interrupted copy: cut after {BEFORE_CUT} of {len(IMAGE.blobs())} blobs, re-run copied "
          f"{result.copied['blobs']}")


def start_playbook(runner: PlaybookRunner, tasks: list[dict]) -> subprocess.Popen:
    """``ansible-playbook`` in its own session (so the test can kill it and every child), as the runner runs it."""
    rundir = Path(tempfile.mkdtemp(prefix="killed-", dir=runner.workdir))
    (rundir / "playbook.yml").write_text(yaml.safe_dump(as_plays(tasks=tasks), sort_keys=False))
    (rundir / "vars.json").write_text(json.dumps({"ansible_python_interpreter": os.sys.executable}))
    command = [str(BIN_DIR / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"@{rundir / 'vars.json'}",
               str(rundir / "playbook.yml")]
    return subprocess.Popen(command, cwd=rundir, env=runner.env(rundir / "events.jsonl"),  # noqa: S603
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (from /proc), deepest first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    order, todo = [], [root]
    while todo:
        pid = todo.pop()
        order.append(pid)
        todo.extend(children.get(pid, []))
    return order[::-1]


def kill_tree(process: subprocess.Popen) -> list[int]:
    """SIGKILL ``process`` and all its descendants, by pid.

    Killing the process group is not enough: ansible-playbook's workers start
    their own sessions, and the module they run would live on as an orphan.
    """
    pids = process_tree(process.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)
    return pids


def test_a_killed_playbook_run_again_copies_only_what_is_missing(plain_registry, registry_factory, proxies,
                                                                 run_playbook):
    RawPusher.for_registry(plain_registry).push("src/app", IMAGE, tag="v1")
    dest_registry = registry_factory()
    proxy = proxies(dest_registry, stall=300.0)
    proxy.add("stall", method="PUT", path=UPLOADS, after=BEFORE_CUT, times=None)
    copy = {"name": "copy", "ocireg.registry.registry_copy": {
        "src": f"{plain_registry.host}/src/app:v1", "dest": f"{proxy.host}/dst/app:v1", "concurrency": 1}}
    process = start_playbook(run_playbook, [copy])
    try:
        assert proxy.wait_for("stall", timeout=120), "the copy never reached its third upload"
    finally:
        killed = kill_tree(process)  # the playbook, its worker and the module, mid-upload
    assert process.returncode == -signal.SIGKILL
    assert len(killed) >= 3  # ansible-playbook, a worker, the module (and the shells between)
    present = assert_cut_cleanly(dest_registry, "dst/app")
    missing = [blob for blob in IMAGE.blobs() if blob.digest not in present]

    copy["ocireg.registry.registry_copy"]["dest"] = f"{dest_registry.host}/dst/app:v1"
    run = run_playbook(tasks=[copy])
    result = run.task("copy")
    assert not result.failed, run.explain()
    assert result["copied"]["blobs"] == len(missing)
    assert result["copied"]["bytes"] == sum(blob.size for blob in missing)
    # result["skipped"] is not read: Ansible takes a module's "skipped" key as "the task was skipped".
    assert RawPuller.for_registry(dest_registry).pull("dst/app", "v1").digest == IMAGE.digest


# --- prune -----------------------------------------------------------------------------------------------------

OLD = "2020-01-01T00:00:00Z"
NEW = "2025-06-01T00:00:00Z"
# untag_kept_images: this test covers a cut in the middle of deletes *and* untags (dev-4, on latest's
# image, is untagged); by default a kept image keeps all its tags unless that opt-in is set.
POLICY = {"match": ["dev-.*"], "older_than": "30d", "protect": ["v[0-9]+", "latest"], "untag_kept_images": True}


def seed_prune(registry) -> dict[str, str]:
    """Kept tags (v1, v2, latest) and condemned old dev tags; dev-4 shares its digest with latest.

    Returns tag -> digest as pushed.
    """
    pusher = RawPusher.for_registry(registry)
    shared = images.make_image("prune-shared", created=OLD)
    content = {
        "v1": images.make_image("prune-v1", created=NEW),
        "v2": images.make_image("prune-v2", created=OLD),  # old, but protected
        "latest": shared,
        "dev-1": images.make_image("prune-dev-1", created=OLD),
        "dev-2": images.make_image("prune-dev-2", created=OLD),
        "dev-3": images.make_multiarch("prune-dev-3", ("linux/amd64", "linux/arm64"), created=OLD),
        "dev-4": shared,
    }
    return {tag: pusher.push("team/app", item, tag=tag).digest for tag, item in content.items()}


def run_prune(host: str) -> Any:
    """What registry_prune does: prune, then fail the task for a repository that failed (failed_repository: fail)."""
    outcome = prune(client(host), build_policy(POLICY), ["team/app"], check_mode=False)
    error = failed_repositories(outcome.failed, "fail")
    if error is not None:
        raise error
    return outcome


def tag_state(registry) -> dict[str, str | None]:
    """Tag -> digest at the real registry for every image tag of the repository.

    A prune lease is left out: a run whose DELETEs are cut cannot remove its lease either, which
    then counts until it expires (docs/guide_parallel.md) and is no image.
    """
    puller = RawPuller.for_registry(registry)
    return {tag: puller.head_manifest("team/app", tag).headers.get("Docker-Content-Digest")
            for tag in puller.tags("team/app") if not is_lease_tag(tag)}


def exists(registry, digest: str) -> bool:
    return RawPuller.for_registry(registry).digest_of("team/app", digest) is not None


@pytest.mark.parametrize("cut_after", [0, 1, 2, 3], ids=lambda n: f"after-{n}-deletes")
def test_a_prune_cut_mid_way_harms_no_kept_tag_and_converges(plain_registry, proxies, cut_after):
    """The DELETEs after the first ``cut_after`` are reset; the cut run fails, the next one finishes the job.

    An index is deleted before its children (so nothing left points at a
    deleted manifest); a cut between the two leaves the children behind,
    untagged and harmless (see docs/reliability.md).
    """
    pushed = seed_prune(plain_registry)
    kept = {tag: pushed[tag] for tag in ("v1", "v2", "latest")}
    children = [child["digest"] for child in json.loads(RawPuller.for_registry(plain_registry).manifest(
        "team/app", pushed["dev-3"])[0])["manifests"]]
    proxy = proxies(plain_registry)
    proxy.add("reset", method="DELETE", after=cut_after, times=None)
    cut_mark = plain_registry.mark()
    with pytest.raises(RegistryError, match="Fix the cause and run again"):
        run_prune(proxy.host)
    assert proxy.counts()["reset"] >= 1
    # What the cut run really deleted, from the registry's own log (a reset DELETE never reaches it).
    deleted_by_cut = {r.path.rsplit("/", 1)[1] for r in plain_registry.requests_since(cut_mark)
                      if r.method == "DELETE" and r.status == 202 and "/manifests/" in r.path}
    # No lease by default (it is opt-in): a cut run leaves nothing of its own in the repository.
    assert not [t for t in RawPuller.for_registry(plain_registry).tags("team/app") if is_lease_tag(t)]
    after_cut = tag_state(plain_registry)
    assert {tag: after_cut.get(tag) for tag in kept} == kept  # no kept tag harmed by the cut
    puller = RawPuller.for_registry(plain_registry)
    for tag, digest in kept.items():
        assert puller.pull("team/app", tag).digest == digest  # and everything below them is still there

    rerun = run_prune(plain_registry.host)  # the next run, with nothing in the way
    assert tag_state(plain_registry) == kept
    assert not any(exists(plain_registry, pushed[tag]) for tag in ("dev-1", "dev-2", "dev-3"))
    assert exists(plain_registry, pushed["dev-4"])  # shared with latest: untagged, never deleted
    # A cut between an index and its children leaves the children: untagged, pointed at by nothing, and
    # invisible to later runs (a registry lists tags, not manifests); garbage-collect --delete-untagged removes them.
    # Exactly the children of an index the cut run deleted, which it did not reach itself, stay behind.
    orphans = [digest for digest in children if exists(plain_registry, digest)]
    expected = [digest for digest in children
                if pushed["dev-3"] in deleted_by_cut and digest not in deleted_by_cut]
    assert orphans == expected, (sorted(deleted_by_cut), orphans)
    assert not set(orphans) & set(tag_state(plain_registry).values())  # untagged
    mark = plain_registry.mark()
    again = run_prune(plain_registry.host)
    assert not again.applied.changed and plain_registry.writes_since(mark) == []  # converged
    for tag, digest in kept.items():
        assert puller.pull("team/app", tag).digest == digest
    print(f"FIGURES interrupted prune: cut after {cut_after} DELETE(s), {proxy.counts()['reset']} resets, re-run "
          f"applied {len(rerun.applied.applied)} actions, {len(orphans)} orphaned children, then 0 writes")
