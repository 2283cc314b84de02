"""Requests per operation, counted in a real Distribution registry's access log, for ours and skopeo.

Each row of the table "Requests per operation" in docs/performance.md is kept true here: the
counts below are what the registry logged for one run of the module (or lookup) on a fresh
registry, and :func:`test_the_performance_table_says_what_was_counted` checks that the table
shows the same numbers. skopeo runs against the same registry so its column is measured, not
recalled. No test here looks at a clock.

The two prune rows are placeholders here until the retention work fills them with its own counted figures.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPusher, make_image
from tests.rig.registry_server import LoggedRequest

SKOPEO = shutil.which("skopeo")
TABLE = Path(__file__).resolve().parents[2] / "docs" / "performance.md"
APP, SRC = "team/app", "team/src"

# One image is a manifest, a config and one layer: the blob requests of a copy are two of each kind.
IMAGE_BLOBS = 2


def module_task(module: str, **options: Any) -> dict[str, Any]:
    return {"name": "op", f"ocireg.registry.{module}": options, "register": "out"}


def counted(registry: RigRegistry, run_playbook, task: dict[str, Any]) -> list[LoggedRequest]:
    """The requests one task sent, after checking it succeeded."""
    mark = registry.mark()
    run = run_playbook(tasks=[task])
    assert run.rc == 0, run.explain()
    return registry.requests_since(mark)


def is_lease_check(request: LoggedRequest, repository: str = APP) -> bool:
    """The tag list a writer sends after its writes while the prune lease is honoured (_ops/coordination)."""
    return request.method == "GET" and request.path.startswith(f"/v2/{repository}/tags/list")


def without_lease_check(requests: list[LoggedRequest], repository: str = APP) -> list[tuple[str, str]]:
    """The operation's requests (method, path without query); the prune lease is opt-in, so a default
    run sends no tag list for it at all."""
    assert not any(is_lease_check(r, repository) for r in requests), requests
    return [(r.method, r.path.split("?")[0]) for r in requests if not is_lease_check(r, repository)]


def kinds(requests: list[tuple[str, str]]) -> list[str]:
    """``METHOD kind`` per request (``HEAD manifests``, ``POST uploads``), for counts that name no digest."""
    out = []
    for method, path in requests:
        part = "uploads" if "/blobs/uploads/" in path else path.split("/")[-2]
        out.append(f"{method} {part}")
    return sorted(out)


@pytest.fixture
def seeded(plain_registry: RigRegistry) -> dict[str, str]:
    pusher = RawPusher.for_registry(plain_registry)
    return {
        "staging": pusher.push_image(APP, make_image("floor-a"), tag="staging").digest,
        "prod": pusher.push_image(APP, make_image("floor-b"), tag="prod").digest,
        "src": pusher.push_image(SRC, make_image("floor-c"), tag="v1").digest,
    }


# -- ours ----------------------------------------------------------------------------------------------
@pytest.mark.oldest_core
def test_promotion_requests(plain_registry: RigRegistry, seeded: dict[str, str], run_playbook) -> None:
    reg = plain_registry
    tag = {"repository": f"{reg.host}/{APP}"}
    same = counted(reg, run_playbook, module_task("registry_tag", **tag, source=":staging", tags=["prod"]))
    assert without_lease_check(same) == [
        ("GET", f"/v2/{APP}/manifests/staging"), ("HEAD", f"/v2/{APP}/manifests/prod"),
        ("PUT", f"/v2/{APP}/manifests/prod")]

    noop = counted(reg, run_playbook, module_task("registry_tag", **tag, source=":staging", tags=["prod"]))
    assert [(r.method, r.path) for r in noop] == [
        ("GET", f"/v2/{APP}/manifests/staging"), ("HEAD", f"/v2/{APP}/manifests/prod")]

    guarded = counted(reg, run_playbook, module_task("registry_tag", **tag, source=f"@{seeded['prod']}",
                                                     tags=["prod"], expected_digest=seeded["staging"]))
    assert without_lease_check(guarded) == [
        ("GET", f"/v2/{APP}/manifests/{seeded['prod']}"), ("HEAD", f"/v2/{APP}/manifests/prod"),
        ("PUT", f"/v2/{APP}/manifests/prod"), ("HEAD", f"/v2/{APP}/manifests/prod")]

    cross = without_lease_check(counted(reg, run_playbook, module_task(
        "registry_tag", **tag, source=f"{reg.host}/{SRC}:v1", tags=["prod"])))
    # The promotion's own 3, the copy engine's look for the manifest and its blobs (HEAD, then a mount);
    # unguarded, the manifest goes straight under the tag, last.
    assert cross[:2] == [("GET", f"/v2/{SRC}/manifests/v1"), ("HEAD", f"/v2/{APP}/manifests/prod")]
    assert cross[-1] == ("PUT", f"/v2/{APP}/manifests/prod")
    assert kinds(cross) == sorted(["GET manifests", "HEAD manifests", "HEAD manifests", "PUT manifests"]
                                  + ["HEAD blobs", "POST uploads"] * IMAGE_BLOBS)
    assert len(cross) == ROWS["promotion, cross-repository"]["ours"]


def test_copy_requests(plain_registry: RigRegistry, seeded: dict[str, str], registry_factory, run_playbook) -> None:
    dest = registry_factory()
    task = module_task("registry_copy", src=f"{plain_registry.host}/{SRC}:v1", dest=f"{dest.host}/{SRC}:v1")
    mark = plain_registry.mark()
    written = without_lease_check(counted(dest, run_playbook, task), SRC)
    read = plain_registry.requests_since(mark)
    # The tag, then the manifest by digest; each blob looked for, then uploaded; the manifest under the tag.
    assert kinds(written) == sorted(["HEAD manifests", "HEAD manifests", "PUT manifests"]
                                    + ["HEAD blobs", "POST uploads", "PUT uploads"] * IMAGE_BLOBS)
    assert kinds([(r.method, r.path) for r in read]) == sorted(["HEAD manifests", "GET manifests"]
                                                               + ["GET blobs"] * IMAGE_BLOBS)
    assert len(written) + len(read) == ROWS["copy, new"]["ours"]

    mark = plain_registry.mark()
    again = counted(dest, run_playbook, task)
    assert [(r.method, r.path) for r in again + plain_registry.requests_since(mark)] == [
        ("HEAD", f"/v2/{SRC}/manifests/v1"), ("HEAD", f"/v2/{SRC}/manifests/v1")]


def test_read_requests(plain_registry: RigRegistry, seeded: dict[str, str], run_playbook) -> None:
    reg = plain_registry
    info = counted(reg, run_playbook, module_task("registry_manifest_info", reference=f"{reg.host}/{APP}:prod"))
    assert [(r.method, r.path) for r in info] == [("GET", f"/v2/{APP}/manifests/prod")]
    mark = reg.mark()
    run = run_playbook(tasks=[{"name": "pin", "ansible.builtin.debug": {
        "msg": "{{ lookup('ocireg.registry.registry', '" + f"{reg.host}/{APP}:prod" + "') }}"}}])
    assert run.rc == 0 and run.task("pin")["msg"] == seeded["prod"], run.explain()
    assert [(r.method, r.path) for r in reg.requests_since(mark)] == [("HEAD", f"/v2/{APP}/manifests/prod")]


#: The three spellings of one mirror engine: each no-op costs what the table says.
MIRRORS = {
    "mirror_spec": lambda src, dest: {"mirror_spec": [{"src": f"{src}/{APP}", "dest": dest}]},
    "select": lambda src, dest: {"src": f"{src}/{APP}", "dest": f"{dest}/{APP}", "select": {}},
    "tags": lambda src, dest: {"src": f"{src}/{APP}", "dest": f"{dest}/{APP}", "tags": [".*"]},
}


@pytest.mark.parametrize("spelling", list(MIRRORS))
def test_mirror_no_op_requests(plain_registry: RigRegistry, seeded: dict[str, str], registry_factory,
                               run_playbook, spelling: str) -> None:
    dest = registry_factory()
    task = module_task("registry_copy", **MIRRORS[spelling](plain_registry.host, dest.host))
    counted(dest, run_playbook, task)
    mark = plain_registry.mark()
    again = counted(dest, run_playbook, task) + plain_registry.requests_since(mark)
    # The source's tag list, then one HEAD per tag on each side: 1 + 2 x 2 tags.
    assert kinds([(r.method, r.path) for r in again]) == sorted(["GET tags"] + ["HEAD manifests"] * 4)
    assert len(again) == ROWS["mirror, no-op (2 tags)"]["ours"]


# -- skopeo, measured the same way ------------------------------------------------------------------------
def skopeo(registry: RigRegistry, *args: str, also: RigRegistry | None = None) -> int:
    """Run skopeo; return the requests the registry (and ``also``) logged for it."""
    assert SKOPEO is not None, "skopeo is required for the request table (install the skopeo package)"
    marks = [(r, r.mark()) for r in (registry, also) if r is not None]
    proc = subprocess.run([SKOPEO, *args], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, f"skopeo {' '.join(args)} failed: {proc.stderr}"
    return sum(len(r.requests_since(m)) for r, m in marks)


def test_skopeo_requests(plain_registry: RigRegistry, seeded: dict[str, str], registry_factory) -> None:
    reg = plain_registry
    dest = registry_factory()
    ref = reg.docker_ref
    copy = ["copy", "--src-tls-verify=false", "--dest-tls-verify=false"]
    measured = {
        "promotion, same repository": skopeo(reg, *copy, ref(APP, "staging"), ref(APP, "prod")),
        "promotion, no-op": skopeo(reg, *copy, ref(APP, "staging"), ref(APP, "prod")),
        "promotion, cross-repository": skopeo(reg, *copy, ref(SRC, "v1"), ref(APP, "prod")),
        "copy, new": skopeo(reg, *copy, ref(SRC, "v1"), dest.docker_ref(SRC, "v1"), also=dest),
        "copy, no-op": skopeo(reg, *copy, ref(SRC, "v1"), dest.docker_ref(SRC, "v1"), also=dest),
        "info": skopeo(reg, "inspect", "--tls-verify=false", ref(APP, "prod")),
        "lookup": skopeo(reg, "inspect", "--tls-verify=false", "--no-tags", "--format", "{{.Digest}}",
                         ref(APP, "prod")),
    }
    mirror = registry_factory()
    sync = ["sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false",
            "--dest-tls-verify=false", f"{reg.host}/{APP}", f"{mirror.host}/mirror"]
    skopeo(reg, *sync, also=mirror)
    measured["mirror, no-op (2 tags)"] = skopeo(reg, *sync, also=mirror)
    # The table's skopeo column is Debian 12's skopeo 1.9; a newer skopeo differs where the table's note
    # says (SKOPEO_ELSEWHERE), and any other difference is news to write down.
    expected = {op: ROWS[op]["skopeo"] for op in measured}
    expected.update(SKOPEO_ELSEWHERE.get(skopeo_minor(), {}))
    assert expected == measured, f"skopeo {skopeo_minor()}: record its figures in docs/performance.md"


#: skopeo versions whose figures differ from the table's skopeo 1.9 column (docs/performance.md says so).
SKOPEO_ELSEWHERE: dict[str, dict[str, int]] = {"1.18": {"mirror, no-op (2 tags)": 12}}


def skopeo_minor() -> str:
    """``major.minor`` of the installed skopeo (``skopeo version 1.9.3`` -> ``1.9``)."""
    out = subprocess.run([SKOPEO, "--version"], check=True, capture_output=True, text=True).stdout
    match = re.search(r"version (\d+)\.(\d+)", out)
    assert match, out
    return f"{match[1]}.{match[2]}"


# -- the table ----------------------------------------------------------------------------------------------
def read_rows() -> dict[str, dict[str, int | None]]:
    """operation -> {"ours": n, "skopeo": n} from the table under "Requests per operation"."""
    text = TABLE.read_text(encoding="utf-8")
    section = text.split("## Requests per operation", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, dict[str, int | None]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("operation", "") or set(cells[0]) <= {"-", " "}:
            continue
        numbers = [re.match(r"\d+", c.replace("*", "")) for c in cells[1:3]]
        rows[cells[0]] = {"ours": int(numbers[0].group()) if numbers[0] else None,
                          "skopeo": int(numbers[1].group()) if numbers[1] else None}
    return rows


ROWS = read_rows()


def test_the_performance_table_says_what_was_counted() -> None:
    # The rows the tests above measure; their figures are asserted there against these.
    assert ROWS["promotion, same repository"]["ours"] == 3
    assert ROWS["promotion, same repository, guarded"]["ours"] == 4
    assert ROWS["promotion, no-op"]["ours"] == 2
    assert ROWS["copy, no-op"]["ours"] == 2
    assert ROWS["info"]["ours"] == 1
    assert ROWS["lookup"]["ours"] == 1
    assert {"prune, plan", "prune, apply"} <= set(ROWS)
