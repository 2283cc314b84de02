"""Benchmark retention at scale: ``registry_prune`` in check mode, the way Ansible runs it, beside a skopeo loop.

Run from the checkout with the project venv (see bench/README.md, "Retention at scale"):

    .venv/bin/python bench/retention.py                    # ~3-5 minutes on 2 cores, prints the table
    .venv/bin/python bench/retention.py --scale 0.1        # a smoke run (200 / 1,000 tags, 20 x 50)
    .venv/bin/python bench/retention.py --source DIR       # the collection built from another checkout (before/after)
    .venv/bin/python bench/retention.py --full-output      # also the full plan + --diff result, for its size
    .venv/bin/python bench/retention.py --apply            # a real prune's requests, loopback and 10 ms each way

``--apply`` is the request budget of a *real* prune (plan + apply, not check mode): one repository
of 300 tags over 240 digests (the seeding below), ``keep_latest: 10``, pruned with the ``_ops`` call
``registry_prune`` makes (``prune()``, in this process: the requests are the module's), once on
loopback and once behind tests/rig/latency.py at 10 ms each way, each against a freshly seeded
registry. It prints the requests the registry logged by kind against the floor tags + distinct
digests + deletions (the bar is 1.5 x the floor at any latency).

One Distribution (tests/rig/registry_server.py) is seeded with plain ``requests`` on threads: one layer
blob, one small image config per distinct digest (its ``created`` one minute apart, older than the
grace period) and one manifest per digest, pushed under its tags; 20 % of the tags are extra tags on
an existing digest. Workloads:

- ``big-2k``: one repository of 2,000 tags over 1,600 digests;
- ``big-10k``: one repository of 10,000 tags over 8,000 digests;
- ``fleet``: 200 repositories x 50 tags (40 digests each), planned in one task with ``repositories: [fleet/*]``
  (repositories read concurrently on one shared pool of ``max_concurrency`` workers).

The *result KiB* column is the size of the module's JSON result as ``ansible -o`` prints it (what
``-v`` output and an AWX job event carry); ``--full-output`` adds the pre-phase-2 shape (every plan
entry, the tag maps of ``--diff``) beside the default one.

Each is planned by ``ansible localhost -m ocireg.registry.registry_prune --check`` with
``keep_latest: 10`` and the collection built and installed as a user gets it (``ansible-galaxy
collection build`` / ``install``, like tests/rig/playbook.py). The module's interpreter is a wrapper
that runs it under GNU time, so the module process's own CPU and peak RSS are measured, apart from
the controller's. Requests are counted in the registry's access log. In the same run a
``skopeo inspect --no-tags`` loop over a sample of the same tags gives the per-tag cost of what users
script today (``--no-tags``: listing thousands of tags per call would make skopeo look worse than a
careful script).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.rig.playbook import build_and_install, hermetic_env
from tests.rig.registry_server import RegistryServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = OCI_MANIFEST
TIME = "/usr/bin/time"
SEED_THREADS = 16


# --- seeding --------------------------------------------------------------------------------------


class Seeder:
    """Pushes many small images with plain requests on a thread pool (one session per thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self.layer = b"ocireg retention bench layer\n" * 4
        self.layer_digest = "sha256:" + hashlib.sha256(self.layer).hexdigest()

    @property
    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = self.session.post(f"{self.url}/v2/{repo}/blobs/uploads/", timeout=60)
        started.raise_for_status()
        location = started.headers["Location"]
        location = location if location.startswith("http") else self.url + location
        done = self.session.put(location, params={"digest": digest}, data=data,
                                headers={"Content-Type": "application/octet-stream"}, timeout=60)
        done.raise_for_status()
        return digest

    def image(self, repo: str, number: int) -> tuple[bytes, bytes]:
        """Config and manifest bytes of image ``number`` (created one minute after the one before)."""
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1735689600 + 60 * number))
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "created": created,
            "config": {"Labels": {"build": str(number), "repository": repo}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(self.layer).hexdigest()]},
        }, sort_keys=True).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                       "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": self.layer_digest, "size": len(self.layer)}],
        }, sort_keys=True).encode()
        return config, manifest

    def put_manifest(self, repo: str, tag: str, manifest: bytes) -> None:
        response = self.session.put(f"{self.url}/v2/{repo}/manifests/{tag}", data=manifest,
                                    headers={"Content-Type": OCI_MANIFEST}, timeout=60)
        response.raise_for_status()

    def seed(self, repo: str, tags: int, digests: int, pool: ThreadPoolExecutor) -> list[str]:
        """``tags`` tags over ``digests`` images in ``repo``; returns the tag names."""
        self.push_blob(repo, self.layer)

        def one(number: int) -> list[str]:
            config, manifest = self.image(repo, number)
            self.push_blob(repo, config)
            names = [f"build-{number:05d}"]
            # Every fourth image also gets a second tag: tags = digests * 1.25.
            if number % 4 == 0:
                names.append(f"ci-{number:05d}")
            for name in names:
                self.put_manifest(repo, name, manifest)
            return names

        return [t for names in pool.map(one, range(digests)) for t in names][:tags]


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed process (or loop): wall seconds, CPU seconds, peak RSS KiB, requests logged."""

    wall: float
    cpu: float
    rss_kib: int
    requests: Counter[str]
    module_wall: float | None = None
    module_cpu: float | None = None
    module_rss_kib: int | None = None
    extra: dict[str, Any] | None = None

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def _timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        started = time.monotonic()
        proc = subprocess.run([TIME, "-f", "%U %S %M", "-o", out.name, *argv], env=env,
                              capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])}... failed (rc={proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        user, system, rss = out.read().split()[-3:]
    return wall, float(user) + float(system), int(rss), proc.stdout


def _counts(server: RegistryServer, mark: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for request in server.requests_since(mark):
        path = request.path.split("?")[0]
        kind = ("tags" if "/tags/list" in path else "manifest" if "/manifests/" in path
                else "blob" if "/blobs/" in path else "referrers" if "/referrers/" in path
                else "catalog" if "_catalog" in path else "other")
        counts[f"{request.method} {kind}"] += 1
    return counts


class Ours:
    """``ansible localhost -m ocireg.registry.registry_prune --check`` with the module under GNU time."""

    def __init__(self, workdir: Path, source: Path) -> None:
        workdir.mkdir(parents=True)
        self.workdir = workdir
        installed = build_and_install(workdir / "build", source)
        self.env = hermetic_env(workdir, ANSIBLE_COLLECTIONS_PATH=str(installed.collections_path),
                                ANSIBLE_HOME=str(workdir / "ansible-home"), ANSIBLE_PIPELINING="1",
                                ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
        self.module_time = workdir / "module.time"
        wrapper = workdir / "python-timed"
        # The module's interpreter: Python under GNU time, so its own CPU and peak RSS are known.
        wrapper.write_text(f"#!/bin/sh\nexec {TIME} -a -f '%e %U %S %M' -o {self.module_time} {sys.executable} \"$@\"\n")
        wrapper.chmod(0o755)
        self.interpreter = wrapper

    def run(self, server: RegistryServer, args: dict[str, Any], diff: bool = False) -> Run:
        self.module_time.write_text("")
        mark = server.mark()
        argv = [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "--check",
                *(["--diff"] if diff else []), "-e", f"ansible_python_interpreter={self.interpreter}",
                "-m", "ocireg.registry.registry_prune", "-a", json.dumps(args), "-o"]
        wall, cpu, rss, stdout = _timed(argv, self.env)
        requests_ = _counts(server, mark)
        lines = [line.split() for line in self.module_time.read_text().splitlines() if line.strip()]
        if not lines:
            raise RuntimeError("the module's time wrapper wrote nothing: was the interpreter used?")
        m_wall, m_user, m_sys, m_rss = lines[-1][-4:]
        summary = None
        result_bytes = 0
        if "=>" in stdout:
            # -o prints "localhost | CHANGED => {the module's JSON result}" on one line: what -v shows.
            result_text = stdout.split("=>", 1)[1].strip()
            result_bytes = len(result_text.encode())
            try:
                summary = json.loads(result_text).get("summary")
            except ValueError:
                summary = None
            if summary:
                summary = {k: v for k, v in summary.items() if k != "by_repository"}
        return Run(wall, cpu, rss, requests_, float(m_wall), float(m_user) + float(m_sys), int(m_rss),
                   extra={"summary": summary, "result_bytes": result_bytes})


def skopeo_loop(server: RegistryServer, refs: list[str]) -> Run:
    """``skopeo inspect --no-tags`` per reference, one process each, as a script does."""
    script = "\n".join(f"skopeo inspect --no-tags --tls-verify=false docker://{server.host}/{ref} >/dev/null"
                       for ref in refs)
    mark = server.mark()
    wall, cpu, rss, _out = _timed(["/bin/sh", "-ec", script])
    return Run(wall, cpu, rss, _counts(server, mark))


def head_vs_get(server: RegistryServer, repo: str, tags: list[str], threads: int = 8) -> dict[str, float]:
    """Milliseconds per request of HEAD and of GET by tag over ``tags`` (8 threads, like the module)."""
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    out: dict[str, float] = {}
    for method in ("HEAD", "GET", "HEAD", "GET"):  # twice each, alternating; the second pair is reported
        started = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda t, m=method: session().request(m, f"{server.url}/v2/{repo}/manifests/{t}",
                                                                headers={"Accept": ACCEPT}, timeout=60).status_code,
                          tags))
        out[method] = 1000 * (time.monotonic() - started) / len(tags)
    return out


# --- report ---------------------------------------------------------------------------------------


def report(results: dict[str, dict[str, Any]], load: tuple[tuple[float, ...], tuple[float, ...]],
           probe: dict[str, float], source: str) -> str:
    rows = [("| workload | tags | digests | ours s (module s) | ours ms/tag | skopeo ms/tag | ratio | requests "
            "(floor = tags + digests) | req/tag | module CPU s | module peak RSS MiB | ansible peak RSS MiB | "
             "result KiB |"),
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ours: Run = r["ours"]
        sk: Run = r["skopeo"]
        tags, digests = r["tags"], r["digests"]
        ours_ms = 1000 * ours.wall / tags
        sk_ms = 1000 * sk.wall / r["sample"]
        floor = tags + digests
        rows.append(
            f"| {name} | {tags:,} | {digests:,} | {ours.wall:.1f} ({ours.module_wall:.1f}) | {ours_ms:.2f} | "
            f"{sk_ms:.1f} | {ours_ms / sk_ms:.3f}x | {ours.total_requests:,} ({ours.total_requests / floor:.2f}x of "
            f"{floor:,}) | {ours.total_requests / tags:.2f} | {ours.module_cpu:.1f} | "
            f"{(ours.module_rss_kib or 0) / 1024:.0f} | {ours.rss_kib / 1024:.0f} | "
            f"{(ours.extra or {}).get('result_bytes', 0) / 1024:,.0f} |")
    lines = [(f"Collection built from `{source}`. Load average before {load[0][0]:.2f} / {load[0][1]:.2f} / "
             f"{load[0][2]:.2f}, after {load[1][0]:.2f} / {load[1][1]:.2f} / {load[1][2]:.2f} ({os.cpu_count()} CPUs)."),
             "", *rows, "",
             (f"HEAD vs GET by tag on Distribution (8 threads, requests): HEAD {probe['HEAD']:.2f} ms, "
              f"GET {probe['GET']:.2f} ms per request."), "", "Requests by kind:", ""]
    for name, r in results.items():
        ours = r["ours"]
        lines.append(f"- {name}: ours {dict(sorted(ours.requests.items()))}; skopeo ({r['sample']} tags) "
                     f"{dict(sorted(r['skopeo'].requests.items()))}, CPU {r['skopeo'].cpu:.1f} s, "
                     f"peak RSS {r['skopeo'].rss_kib / 1024:.0f} MiB; summary {ours.extra and ours.extra['summary']}")
    return "\n".join(lines)


def apply_budget(tags: int = 300, digests: int = 240, delays: tuple[float, ...] = (0.0, 10.0)) -> str:
    """A real prune of ``tags`` tags keeping 10, per one-way delay: requests logged against the floor."""
    tests_dir = ROOT / "tests"
    if str(tests_dir) not in sys.path:
        sys.path.insert(0, str(tests_dir))
    import conftest  # noqa: F401  # pylint: disable=unused-import,import-outside-toplevel  # the collection on sys.path
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
    from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import prune

    from tests.rig.latency import LatencyProxy

    lines = ["| link | requests (plan + apply) | floor (tags + digests + deletions) | ratio | by kind | wall s |",
             "|---|---|---|---|---|---|"]
    for delay in delays:
        with RegistryServer() as server, ThreadPoolExecutor(SEED_THREADS) as pool:
            names = Seeder(server.url).seed("apply/app", tags, digests, pool)
            proxy = LatencyProxy(server.host, delay).start() if delay else None
            try:
                host = proxy.host if proxy else server.host
                mark = server.mark()
                prune(Registry(host, TransportOptions()), build_policy({"keep_latest": 10}), ["apply/app"],
                      check_mode=True)  # check mode sends the plan's reads only: the plan's share
                plan = len(server.requests_since(mark))
                mark = server.mark()
                started = time.monotonic()
                outcome = prune(Registry(host, TransportOptions()), build_policy({"keep_latest": 10}), ["apply/app"],
                                check_mode=False)
                wall = time.monotonic() - started
                sent = server.requests_since(mark)
            finally:
                if proxy:
                    proxy.stop()
        deleted = sum(1 for a in outcome.applied.applied if a["action"] == "delete")
        floor = len(names) + digests + deleted
        kinds = Counter(f"{r.method} {'tags' if '/tags/' in r.path else r.path.split('/')[-2]}" for r in sent)
        link = f"{delay:g} ms each way" if delay else "loopback"
        lines.append(f"| {link} | {len(sent)} ({plan} + {len(sent) - plan}) | {floor} ({len(names)} + {digests} + {deleted}) | "
                     f"{len(sent) / floor:.2f}x | {dict(sorted(kinds.items()))} | {wall:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every workload's size (smoke: 0.1)")
    parser.add_argument("--sample", type=int, default=50, help="tags in the skopeo loop (default 50)")
    parser.add_argument("--source", type=Path, action="append", default=None,
                        help="checkout to build the collection from (repeat to compare builds on the same seed)")
    parser.add_argument("--only", nargs="*", default=None, help="workloads to run (big-2k big-10k fleet)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    parser.add_argument("--full-output", action="store_true",
                        help="also plan each workload with plan_detail: full and --diff (the full result "
                             "shape: every plan entry and both tag maps) to compare result size and memory")
    parser.add_argument("--apply", action="store_true",
                        help="only the request budget of a real prune (300 tags keeping 10), loopback and 10 ms")
    options = parser.parse_args(argv)
    if options.apply:
        print(apply_budget())
        return 0
    if shutil.which("skopeo") is None or not Path(TIME).exists():
        print("needs skopeo and GNU time (/usr/bin/time)", file=sys.stderr)
        return 2
    s = options.scale
    workloads = {"big-2k": (1, int(2000 * s), int(1600 * s)), "big-10k": (1, int(10000 * s), int(8000 * s)),
                 "fleet": (max(1, int(200 * s)), 50, 40)}
    if options.only:
        workloads = {k: v for k, v in workloads.items() if k in options.only}
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="ocireg-bench-retention-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        sources = [path.resolve() for path in options.source or [ROOT]]
        builds = {str(path): Ours(workdir / f"build-{i}", path) for i, path in enumerate(sources)}
        with RegistryServer() as server, ThreadPoolExecutor(SEED_THREADS) as pool:
            seeder = Seeder(server.url)
            started = time.monotonic()
            seeded: dict[str, dict[str, list[str]]] = {}
            for name, (repos, tags, digests) in workloads.items():
                prefix = "fleet" if name == "fleet" else name
                names = [f"{prefix}/app-{i:03d}" for i in range(repos)] if name == "fleet" else [f"{prefix}/app"]
                seeded[name] = {repo: seeder.seed(repo, tags, digests, pool) for repo in names}
            print(f"seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)
            first = next(iter(seeded.values()))
            probe_repo, probe_tags = next(iter(first.items()))
            probe = head_vs_get(server, probe_repo, probe_tags[:1000])
            for name, (repos, tags, digests) in workloads.items():
                common = {"keep_latest": 10, "max_delete_ratio": 1.0, "max_deletions": 10 ** 6}
                if name == "fleet":
                    args = {"registry": server.host, "repositories": ["fleet/*"], **common}
                else:
                    args = {"repository": f"{server.host}/{name}/app", **common}
                runs = {}
                for source, ours in builds.items():
                    print(f"{name}: ours ({source})...", file=sys.stderr)
                    runs[source] = ours.run(server, args)
                    if options.full_output:
                        print(f"{name}: ours, full output ({source})...", file=sys.stderr)
                        runs[f"{source} full+diff"] = ours.run(server, {**args, "plan_detail": "full"}, diff=True)
                every = [f"{repo}:{tag}" for repo, tag_list in seeded[name].items() for tag in tag_list]
                step = max(1, len(every) // options.sample)
                sample = every[::step][:options.sample]
                print(f"{name}: skopeo x {len(sample)}...", file=sys.stderr)
                skopeo = skopeo_loop(server, sample)
                for source, run in runs.items():
                    label = name if len(runs) == 1 else f"{name} [{Path(source.split()[0]).name}" + (
                        " plan_detail=full --diff]" if source.endswith("full+diff") else "]")
                    results[label] = {"ours": run, "skopeo": skopeo, "sample": len(sample),
                                      "tags": repos * tags, "digests": repos * digests}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(results, (load_before, os.getloadavg()), probe, ", ".join(str(p) for p in sources))
    print(text)
    if options.json:
        options.json.write_text(json.dumps({k: {"tags": v["tags"], "digests": v["digests"], "sample": v["sample"],
                                                "ours": v["ours"].__dict__, "skopeo": v["skopeo"].__dict__}
                                            for k, v in results.items()}, default=str, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
