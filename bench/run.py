"""Benchmark the copy engine side by side with skopeo and a raw curl floor.

Run from the checkout with the project venv (see bench/README.md):

    .venv/bin/python bench/run.py            # default run, about 4 minutes on 2 cores
    .venv/bin/python bench/run.py --big      # adds W1-big, one 512 MiB layer
    .venv/bin/python bench/run.py --rounds 1 --layer-mib 8 --no-write   # smoke run

It starts local Distribution registries (tests/rig/registry_server.py),
builds the workloads, times every tool in fresh processes for several rounds
(tool order rotated each round), and prints a markdown table of medians,
ratios and peak RSS, which it also writes to docs/performance.md.

Each timed run is a separate process: ours is ``bench/run.py worker-copy``
(Python start-up and imports included, as for a module run), skopeo is
``skopeo copy --all --preserve-digests``, the floor is curl. Peak RSS is GNU
time's ``%M`` for that process.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"))
TOOLS = ("ours", "skopeo", "floor")
SWEEP = (1, 2, 4, 8)
TIME = "/usr/bin/time"  # GNU time, for peak RSS


# --- workers (run in their own process, so their RSS is theirs alone) ---------------------------


def _collection_imports() -> dict[str, Any]:
    import tests.conftest  # noqa: F401 - puts ansible_collections.ocireg.registry on sys.path
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying import image as engine
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
    from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions

    return {"engine": engine, "Registry": Registry, "TransportOptions": TransportOptions}


def worker_copy(args: dict[str, Any]) -> None:
    """One copy_image call; prints the result as JSON."""
    mods = _collection_imports()
    options = mods["TransportOptions"](plain_http=True)
    registries: dict[str, Any] = {}

    def repository(host: str, name: str) -> Any:
        # One Registry per host, as ClientFactory does: same host means mounts are possible.
        registries.setdefault(host, mods["Registry"](host, options))
        return registries[host].repository(name)

    engine = mods["engine"]
    result = engine.copy_image(
        repository(args["src_host"], args["src_repo"]), args["ref"],
        repository(args["dest_host"], args["dest_repo"]), [args["tag"]],
        engine.CopyOptions(concurrency=args["concurrency"]))
    print(json.dumps(result.to_dict()))


def worker_resolve(args: dict[str, Any]) -> None:
    """Resolve many tags concurrently with Repository.resolve; prints how many resolved."""
    mods = _collection_imports()
    repo = mods["Registry"](args["host"], mods["TransportOptions"](plain_http=True)).repository(args["repo"])
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args["concurrency"]) as pool:
        found = [d for d in pool.map(repo.resolve, args["tags"]) if d is not None]
    print(json.dumps({"resolved": len(found), "duration": time.perf_counter() - started}))


def worker_noop(_args: dict[str, Any]) -> None:
    """Only the imports: the RSS floor of a Python process running our code."""
    _collection_imports()
    print("{}")


def worker_transfer(args: dict[str, Any]) -> None:
    """One registry_copy transfer (either side may be a local target such as oci-archive:); prints JSON."""
    mods = _collection_imports()
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.transfer import run_transfer

    options = mods["TransportOptions"](plain_http=True)
    registries: dict[str, Any] = {}

    def open_repository(reference: Any, _side: str) -> Any:
        registries.setdefault(reference.registry, mods["Registry"](reference.registry, options))
        return registries[reference.registry].repository(reference.repository)

    done = run_transfer(args["src"], args["dest"], mods["engine"].CopyOptions(concurrency=args["concurrency"]),
                        open_repository)
    print(json.dumps(done.copy.to_dict()))


WORKERS = {"worker-copy": worker_copy, "worker-resolve": worker_resolve, "worker-noop": worker_noop,
           "worker-transfer": worker_transfer}


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed process."""

    wall: float
    rss_kib: int
    stdout: str


def measured(argv: Sequence[str]) -> Run:
    """Run ``argv``, return its wall time and peak RSS; raise if it fails.

    The RSS comes from GNU time's ``%M`` (``wait4`` of its child, so it covers
    the child's own children too). Reading ``wait4`` here instead would be
    wrong: a child forked from this Python process starts with this
    process's resident pages as its high-water mark.
    """
    with tempfile.TemporaryDirectory() as tmp:
        rss_file, out_file, err_file = (Path(tmp) / name for name in ("rss", "out", "err"))
        with out_file.open("wb") as out, err_file.open("wb") as err:
            start = time.perf_counter()
            proc = subprocess.run([TIME, "-f", "%M", "-o", str(rss_file), *argv],  # noqa: S603 - fixed tools
                                  stdout=out, stderr=err, check=False)
            wall = time.perf_counter() - start
        stdout, stderr = out_file.read_text(), err_file.read_text()
        if proc.returncode != 0:
            raise RuntimeError(f"{shlex.join(argv)} failed ({proc.returncode}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
        rss = int(rss_file.read_text().split()[-1])
    return Run(wall, rss, stdout)


def self_command(worker: str, args: dict[str, Any]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), worker, json.dumps(args)]


# --- content ------------------------------------------------------------------------------------


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes what passes and forwards it."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.hash.update(data)
        self.size += len(data)
        if self.target is not None:
            self.target.write(data)
        return len(data)


class _RandomReader(io.RawIOBase):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = os.urandom(n)
        self.left -= n
        return n


@dataclass
class BlobFile:
    """A blob on disk, with what a descriptor needs."""

    path: Path
    digest: str
    size: int
    media_type: str
    diff_id: str = ""

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def make_layer(workdir: Path, size: int, name: str) -> BlobFile:
    """A gzip (level 1) tar holding ``size`` random bytes, written to disk, never held in memory."""
    path = workdir / f"{name}.tar.gz"
    with path.open("wb") as raw_file:
        compressed = _HashingWriter(raw_file)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=1, mtime=0) as gz:
            tar_hash = _HashingWriter(gz)
            with tarfile.open(fileobj=tar_hash, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
                info = tarfile.TarInfo(f"{name}.bin")
                info.size = size
                info.mtime = 1_700_000_000
                tar.addfile(info, io.BufferedReader(_RandomReader(size), MiB))
    return BlobFile(path, "sha256:" + compressed.hash.hexdigest(), compressed.size, OCI_LAYER_GZIP,
                    diff_id="sha256:" + tar_hash.hash.hexdigest())


def small_blob(workdir: Path, data: bytes, media_type: str) -> BlobFile:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = workdir / digest.partition(":")[2]
    path.write_bytes(data)
    return BlobFile(path, digest, len(data), media_type)


@dataclass
class Image:
    """One manifest and its blobs (or an index and its images)."""

    raw: bytes
    media_type: str
    blobs: list[BlobFile] = field(default_factory=list)
    children: list["Image"] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()

    def all_blobs(self) -> list[BlobFile]:
        return self.blobs + [b for c in self.children for b in c.all_blobs()]

    @property
    def total_bytes(self) -> int:
        return sum(b.size for b in self.all_blobs())


def make_image(workdir: Path, name: str, layer_sizes: Sequence[int], arch: str = "amd64") -> Image:
    layers = [make_layer(workdir, size, f"{name}-{i}") for i, size in enumerate(layer_sizes)]
    config = small_blob(workdir, json.dumps({
        "architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [{"created_by": f"bench layer {i}"} for i in range(len(layers))],
    }).encode(), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                "layers": [l.descriptor() for l in layers]}
    return Image(json.dumps(manifest, indent=3).encode(), OCI_MANIFEST, [config, *layers])


def make_index(children: Sequence[Image], arches: Sequence[str]) -> Image:
    manifests = [{"mediaType": c.media_type, "digest": c.digest, "size": len(c.raw),
                  "platform": {"os": "linux", "architecture": a}} for c, a in zip(children, arches)]
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, indent=3).encode()
    return Image(raw, OCI_INDEX, children=list(children))


# --- raw seeding (plain requests, not our client) ------------------------------------------------


def seed(url: str, repo: str, image: Image, tag: str | None) -> None:
    import requests

    session = requests.Session()
    for child in image.children:
        seed(url, repo, child, None)
    for blob in image.blobs:
        if session.head(f"{url}/v2/{repo}/blobs/{blob.digest}", timeout=30).status_code == 200:
            continue
        location = session.post(f"{url}/v2/{repo}/blobs/uploads/", timeout=30).headers["Location"]
        with blob.path.open("rb") as content:
            put = session.put(location, params={"digest": blob.digest}, data=content, timeout=600,
                              headers={"Content-Type": "application/octet-stream",
                                       "Content-Length": str(blob.size)})
        put.raise_for_status()
    response = session.put(f"{url}/v2/{repo}/manifests/{tag or image.digest}", data=image.raw, timeout=30,
                           headers={"Content-Type": image.media_type})
    response.raise_for_status()


# --- the three tools ----------------------------------------------------------------------------


def ours(src_host: str, src_repo: str, dest_host: str, dest_repo: str, concurrency: int, ref: str = "v1",
         tag: str = "v1") -> Run:
    return measured(self_command("worker-copy", {
        "src_host": src_host, "src_repo": src_repo, "dest_host": dest_host, "dest_repo": dest_repo,
        "ref": ref, "tag": tag, "concurrency": concurrency}))


def skopeo(src_host: str, src_repo: str, dest_host: str, dest_repo: str) -> Run:
    return measured(["skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
                     "--dest-tls-verify=false", f"docker://{src_host}/{src_repo}:v1",
                     f"docker://{dest_host}/{dest_repo}:v1"])


def _pipelines(commands: Sequence[str]) -> tuple[float, int]:
    """Run shell commands all at once (one shell, ``&`` + ``wait``); return wall time and peak RSS."""
    # Every job's status is checked: a pipeline's status is its last command's (curl -f fails on HTTP errors).
    script = "pids=''\n" + "".join(f"( {c} ) & pids=\"$pids $!\"\n" for c in commands) + \
        "for pid in $pids; do wait $pid || exit 1; done\n"
    run = measured(["sh", "-c", script])
    return run.wall, run.rss_kib


def floor_copy(src_url: str, src_repo: str, dest_url: str, dest_repo: str, image: Image, mount: bool) -> Run:
    """The raw floor: every blob at once, ``curl GET | curl PUT`` (or one mount POST), no verification;
    then the manifests with curl. Nothing is checked first: it is the cost of moving the bytes."""
    import requests

    start = time.perf_counter()
    commands = []
    for blob in {b.digest: b for b in image.all_blobs()}.values():
        if mount:
            commands.append(f"curl -sfS -o /dev/null -X POST "
                            f"'{dest_url}/v2/{dest_repo}/blobs/uploads/?mount={blob.digest}&from={src_repo}'")
            continue
        location = requests.post(f"{dest_url}/v2/{dest_repo}/blobs/uploads/", timeout=30).headers["Location"]
        commands.append(f"curl -sfS '{src_url}/v2/{src_repo}/blobs/{blob.digest}' | curl -sfS -o /dev/null "
                        f"-X PUT -T - -H 'Content-Type: application/octet-stream' '{location}&digest={blob.digest}'")
    rss = _pipelines(commands)[1]
    with tempfile.TemporaryDirectory() as tmp:
        puts = []
        for i, manifest in enumerate([*image.children, image]):
            ref = "v1" if manifest is image else manifest.digest
            path = Path(tmp) / str(i)
            path.write_bytes(manifest.raw)
            puts.append(f"curl -sfS -o /dev/null -X PUT -H 'Content-Type: {manifest.media_type}' "
                        f"--data-binary @{path} '{dest_url}/v2/{dest_repo}/manifests/{ref}'")
        # Children first, then the index, in order.
        _pipelines([" && ".join(puts)])
    wall = time.perf_counter() - start
    check = requests.head(f"{dest_url}/v2/{dest_repo}/manifests/v1", headers={"Accept": ACCEPT}, timeout=30)
    if check.headers.get("Docker-Content-Digest") != image.digest:
        raise RuntimeError(f"the floor copy to {dest_repo} did not produce {image.digest}")
    return Run(wall, rss, "")


def floor_heads(urls: Sequence[str], parallel: int) -> Run:
    args = ["curl", "-sfS", "--parallel", "--parallel-max", str(parallel), "-H", f"Accept: {ACCEPT}"]
    for url in urls:
        args += ["-I", "-o", "/dev/null", url]
    return measured(args)


# --- registries ---------------------------------------------------------------------------------


def registry() -> Any:
    from tests.rig.registry_server import RegistryServer

    return RegistryServer().start()


class Fresh:
    """A registry that lives for one timed run (so no tool finds blobs left by another)."""

    def __enter__(self) -> Any:
        self.server = registry()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


# --- the benchmark ------------------------------------------------------------------------------


@dataclass
class Result:
    workload: str
    tool: str
    runs: list[Run] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    uploads: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def rss_mib(self) -> float:
        return max(r.rss_kib for r in self.runs) / 1024

    @property
    def engine(self) -> float | None:
        """Median of the time ours reported itself (without Python start-up and imports)."""
        own = [json.loads(r.stdout)["duration"] for r in self.runs if r.stdout.strip().startswith("{")
               and "duration" in json.loads(r.stdout)]
        return statistics.median(own) if own else None


def uploads_in(requests_logged: Sequence[Any]) -> int:
    return sum(1 for r in requests_logged if r.method in ("PUT", "PATCH") and "/blobs/uploads/" in r.path)


def rotated(items: Sequence[str], shift: int) -> list[str]:
    shift %= len(items)
    return list(items[shift:]) + list(items[:shift])


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench(args: argparse.Namespace) -> tuple[list[Result], dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="ocireg-bench-"))
    results: dict[tuple[str, str], Result] = {}
    facts: dict[str, Any] = {}

    def record(workload: str, tool: str, run: Run, requests: int | None = None, uploads: int | None = None) -> None:
        item = results.setdefault((workload, tool), Result(workload, tool))
        item.runs.append(run)
        if requests is not None:
            item.requests.append(requests)
        if uploads is not None:
            item.uploads.append(uploads)
        log(f"  {workload:9} {tool:10} {run.wall:7.3f}s  rss {run.rss_kib / 1024:6.1f} MiB"
            + (f"  requests {requests}" if requests is not None else "")
            + (f"  blob uploads {uploads}" if uploads is not None else ""))

    layer = args.layer_mib * MiB
    source = registry()
    try:
        log(f"building workloads in {workdir} ...")
        w1 = make_image(workdir, "w1", [layer] * 4)
        seed(source.url, "w1/app", w1, "v1")
        w3 = make_index([make_image(workdir, f"w3-{a}", [layer // 2] * 2, a) for a in ("amd64", "arm64", "s390x")],
                        ("amd64", "arm64", "s390x"))
        seed(source.url, "w3/app", w3, "v1")
        big = None
        if args.big:
            big = make_image(workdir, "w1big", [512 * MiB])
            seed(source.url, "w1big/app", big, "v1")
        facts["w1_bytes"], facts["w3_bytes"] = w1.total_bytes, w3.total_bytes
        facts["big_bytes"] = big.total_bytes if big else None
        noop = [measured(self_command("worker-noop", {})) for _attempt in range(3)]
        facts["noop_rss_mib"] = max(r.rss_kib for r in noop) / 1024
        facts["noop_wall"] = statistics.median(r.wall for r in noop)

        cross = [("W1", "w1/app", w1)] + ([("W1-big", "w1big/app", big)] if big else []) + [("W3", "w3/app", w3)]
        # The concurrency sweep runs in the same rounds as the other tools, so all see the same conditions.
        sweep = [f"ours c={c}" for c in SWEEP if c != args.concurrency] if args.sweep else []
        for workload, repo, image in cross:
            tools = [*TOOLS, *(sweep if workload in ("W1", "W3") else [])]
            log(f"{workload}: {image.total_bytes / MiB:.0f} MiB across registries")
            for rnd in range(args.rounds):
                for tool in rotated(tools, rnd):
                    with Fresh() as dest:
                        if tool.startswith("ours"):
                            concurrency = int(tool.partition("c=")[2] or args.concurrency)
                            run = ours(source.host, repo, dest.host, "copy/app", concurrency)
                        elif tool == "skopeo":
                            run = skopeo(source.host, repo, dest.host, "copy/app")
                        else:
                            run = floor_copy(source.url, repo, dest.url, "copy/app", image, mount=False)
                        record(workload, tool, run)

        log("W2: the W1 image into another repository of the same registry")
        for rnd in range(args.rounds):
            for tool in rotated(TOOLS, rnd):
                target = f"w2/{tool}-{rnd}"
                mark = source.mark()
                if tool == "ours":
                    run = ours(source.host, "w1/app", source.host, target, args.concurrency)
                elif tool == "skopeo":
                    run = skopeo(source.host, "w1/app", source.host, target)
                else:
                    run = floor_copy(source.url, "w1/app", source.url, target, w1, mount=True)
                record("W2", tool, run, uploads=uploads_in(source.requests_since(mark)))

        log("W4: no-op re-copy of W1 to a registry that has it")
        with Fresh() as dest:
            ours(source.host, "w1/app", dest.host, "w4/app", args.concurrency)
            for rnd in range(args.rounds):
                for tool in rotated(TOOLS, rnd):
                    marks = source.mark(), dest.mark()
                    if tool == "ours":
                        run = ours(source.host, "w1/app", dest.host, "w4/app", args.concurrency)
                    elif tool == "skopeo":
                        run = skopeo(source.host, "w1/app", dest.host, "w4/app")
                    else:
                        run = floor_heads([f"{source.url}/v2/w1/app/manifests/v1",
                                           f"{dest.url}/v2/w4/app/manifests/v1"], 2)
                    count = len(source.requests_since(marks[0])) + len(dest.requests_since(marks[1]))
                    record("W4", tool, run, requests=count)

        log(f"W5: resolving {args.tags} tags")
        tiny = make_image(workdir, "w5", [4096])
        seed(source.url, "w5/app", tiny, "t0")
        import requests as http

        with http.Session() as session:
            for i in range(1, args.tags):
                session.put(f"{source.url}/v2/w5/app/manifests/t{i}", data=tiny.raw, timeout=30,
                            headers={"Content-Type": tiny.media_type}).raise_for_status()
        tags = [f"t{i}" for i in range(args.tags)]
        loop = "; ".join(f"skopeo inspect --raw --tls-verify=false docker://{source.host}/w5/app:{t} >/dev/null"
                         for t in tags)
        for rnd in range(args.rounds):
            for tool in rotated(TOOLS, rnd):
                if tool == "ours":
                    run = measured(self_command("worker-resolve", {
                        "host": source.host, "repo": "w5/app", "tags": tags, "concurrency": args.resolve_concurrency}))
                    if json.loads(run.stdout)["resolved"] != len(tags):
                        raise RuntimeError(f"resolved {run.stdout} of {len(tags)} tags")
                elif tool == "skopeo":
                    run = measured(["sh", "-ec", loop])
                else:
                    run = floor_heads([f"{source.url}/v2/w5/app/manifests/{t}" for t in tags],
                                      args.resolve_concurrency)
                record("W5", tool, run)
    finally:
        source.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return list(results.values()), facts


def airgap_round(tool: str, source: Any, repo: str, workdir: Path, concurrency: int) -> tuple[Run, Run]:
    """registry -> oci-archive -> a fresh registry, by ``tool``: the export run and the import run."""
    archive = workdir / f"airgap-{tool}.tar"
    archive.unlink(missing_ok=True)
    with Fresh() as dest:
        if tool == "ours":
            out = measured(self_command("worker-transfer", {
                "src": f"{source.host}/{repo}:v1", "dest": f"oci-archive:{archive}:{repo}:v1",
                "concurrency": concurrency}))
            back = measured(self_command("worker-transfer", {
                "src": f"oci-archive:{archive}:{repo}:v1", "dest": f"{dest.host}/back/app:v1",
                "concurrency": concurrency}))
        else:
            out = measured(["skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
                            f"docker://{source.host}/{repo}:v1", f"oci-archive:{archive}:{repo}:v1"])
            back = measured(["skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
                             f"oci-archive:{archive}:{repo}:v1", f"docker://{dest.host}/back/app:v1"])
        digest = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                 f"docker://{dest.host}/back/app:v1"], capture_output=True, check=True).stdout
        source_raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                     f"docker://{source.host}/{repo}:v1"], capture_output=True, check=True).stdout
        if digest != source_raw:
            raise RuntimeError(f"{tool}: the imported manifest differs from the source's")
    archive.unlink(missing_ok=True)
    return out, back


def bench_airgap(args: argparse.Namespace) -> tuple[list[Result], dict[str, Any]]:
    """W6 / W7: the W1 image and the W3 index through an oci-archive, ours and skopeo in the same rounds."""
    workdir = Path(tempfile.mkdtemp(prefix="ocireg-bench-airgap-"))
    results: dict[tuple[str, str], Result] = {}
    layer = args.layer_mib * MiB
    source = registry()
    facts: dict[str, Any] = {}
    try:
        w1 = make_image(workdir, "w1", [layer] * 4)
        seed(source.url, "w1/app", w1, "v1")
        w3 = make_index([make_image(workdir, f"w3-{a}", [layer // 2] * 2, a) for a in ("amd64", "arm64", "s390x")],
                        ("amd64", "arm64", "s390x"))
        seed(source.url, "w3/app", w3, "v1")
        facts["w1_bytes"], facts["w3_bytes"] = w1.total_bytes, w3.total_bytes
        for workload, repo in (("W6", "w1/app"), ("W7", "w3/app")):
            log(f"{workload}: {repo} registry -> oci-archive -> registry")
            for rnd in range(args.rounds):
                for tool in rotated(("ours", "skopeo"), rnd):
                    out, back = airgap_round(tool, source, repo, workdir, args.concurrency)
                    for phase, run in (("export", out), ("import", back),
                                       ("total", Run(out.wall + back.wall, max(out.rss_kib, back.rss_kib), ""))):
                        results.setdefault((workload, f"{tool} {phase}"), Result(workload, f"{tool} {phase}")).runs.append(run)
                    log(f"  {workload} {tool:7} export {out.wall:6.3f}s import {back.wall:6.3f}s "
                        f"rss {max(out.rss_kib, back.rss_kib) / 1024:6.1f} MiB")
    finally:
        source.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return list(results.values()), facts


def report_airgap(results: list[Result], facts: dict[str, Any], args: argparse.Namespace) -> str:
    """The air-gap table: export, import and total per tool, ratios against skopeo, peak RSS."""
    by_key = {(r.workload, r.tool): r for r in results}
    lines = [
        "## Air-gapped transfer (registry -> oci-archive -> registry)",
        "",
        f"Measured with `bench/run.py {' '.join(args.argv)}`".rstrip() + f" ({args.rounds} rounds, medians; "
        "tool order rotated each round; each import goes to a fresh registry). **ours** = `run_transfer` (what "
        "`registry_copy` runs) in a fresh Python process per step; **skopeo** = `skopeo copy --all "
        "--preserve-digests` to and from `oci-archive:`. Both results are checked: the imported manifest is "
        "byte-identical to the source's. Peak RSS is the larger of the two steps' (GNU time `%M`).",
        "",
        "| workload | step | ours median s | skopeo median s | ours / skopeo | ours peak RSS MiB | skopeo peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    text = {"W6": f"W6 W1 image (4 × {args.layer_mib} MiB, {facts['w1_bytes'] / MiB:.0f} MiB)",
            "W7": f"W7 3-platform index ({facts['w3_bytes'] / MiB:.0f} MiB)"}
    for workload in ("W6", "W7"):
        for phase in ("export", "import", "total"):
            ours_item, theirs = by_key[(workload, f"ours {phase}")], by_key[(workload, f"skopeo {phase}")]
            lines.append(f"| {text[workload] if phase == 'export' else ''} | {phase} | {ours_item.median:.3f} | "
                         f"{theirs.median:.3f} | {ours_item.median / theirs.median:.2f}× | {ours_item.rss_mib:.1f} | "
                         f"{theirs.rss_mib:.1f} |")
    return "\n".join(lines) + "\n"


# --- report -------------------------------------------------------------------------------------


WORKLOAD_TEXT = {
    "W1": "W1 4 × {layer} MiB single-arch image, across registries",
    "W1-big": "W1-big one 512 MiB layer, across registries",
    "W2": "W2 W1's image into another repository of the same registry",
    "W3": "W3 3-platform index (2 × {half} MiB layers each), across registries",
    "W4": "W4 no-op re-copy of W1",
    "W5": "W5 resolve {tags} tags",
}


def environment() -> dict[str, str]:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "unknown"

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": f"{cpu} × {os.cpu_count()}",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "skopeo": out(["skopeo", "--version"]),
        "curl": out(["curl", "--version"]),
        "registry": out([os.environ.get("OCIREG_REGISTRY_BIN", "/usr/bin/docker-registry"), "--version"]),
    }


def report(results: list[Result], facts: dict[str, Any], args: argparse.Namespace) -> str:
    by_key = {(r.workload, r.tool): r for r in results}
    env = environment()
    lines = [
        "## Measurements",
        "",
        "Measured with `bench/run.py` (see `bench/README.md`); every number below comes from one run of it.",
        f"Command: `python bench/run.py {' '.join(args.argv)}`".rstrip() + f" ({args.rounds} rounds, medians).",
        "",
        f"Machine: {env['cpu']}; {env['os']}; Python {env['python']}; {env['skopeo']}; {env['registry']}; "
        f"{env['curl'].split(' (')[0]}. Registries: CNCF Distribution on 127.0.0.1 (loopback), filesystem "
        "storage on the same disk.",
        "",
        "Tools: **ours** = `copy_image` in a fresh Python process (`bench/run.py worker-copy`, start-up and "
        f"imports included; concurrency {args.concurrency}); **skopeo** = `skopeo copy --all --preserve-digests` "
        "(W5: a loop of `skopeo inspect --raw`, one process per tag); **floor** = curl with no checks: every blob "
        "at once as `curl GET | curl PUT` (W2: one `curl` mount POST per blob; W4: `curl -I` of the two tags; "
        f"W5: one `curl --parallel -I` over all tags, {args.resolve_concurrency} at a time).",
        "Cross-registry runs go to a fresh destination registry each time. Peak RSS is GNU time's `%M` for the "
        f"process (max over rounds); a Python process that only imports our code peaks at {facts['noop_rss_mib']:.1f} MiB "
        f"and takes {facts['noop_wall']:.3f} s to start. *In-process s* is the time ours measured itself "
        "(`CopyResult.duration`; W5: the resolve loop), without that start-up.",
        "",
        "| workload | tool | median s | min s | max s | vs skopeo | vs floor | in-process s | peak RSS MiB | requests "
        "| blob uploads |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = ["W1", "W1-big", "W2", "W3", "W4", "W5"]
    text = {k: v.format(layer=args.layer_mib, half=args.layer_mib // 2, tags=args.tags) for k, v in WORKLOAD_TEXT.items()}
    for workload in order:
        tools = [t for t in (*TOOLS, *(f"ours c={c}" for c in SWEEP)) if (workload, t) in by_key]
        labels = {"ours": f"ours ({args.resolve_concurrency} threads)" if workload == "W5" else f"ours (c={args.concurrency})"}
        for tool in tools:
            item = by_key[(workload, tool)]
            walls = [r.wall for r in item.runs]
            skopeo_median = by_key[(workload, "skopeo")].median if (workload, "skopeo") in by_key else None
            floor_median = by_key[(workload, "floor")].median if (workload, "floor") in by_key else None
            vs_skopeo = f"{item.median / skopeo_median:.2f}×" if skopeo_median and tool != "skopeo" else ""
            vs_floor = f"{item.median / floor_median:.2f}×" if floor_median and tool != "floor" else ""
            requests = f"{statistics.median(item.requests):g}" if item.requests else ""
            uploads = f"{max(item.uploads)}" if item.uploads else ""
            engine = f"{item.engine:.3f}" if item.engine is not None else ""
            lines.append(f"| {text[workload] if tool == tools[0] else ''} | {labels.get(tool, tool)} | {item.median:.3f} | "
                         f"{min(walls):.3f} | {max(walls):.3f} | {vs_skopeo} | {vs_floor} | {engine} | "
                         f"{item.rss_mib:.1f} | {requests} | {uploads} |")
    lines.append("")
    lines.append(f"Bytes per workload: W1 {facts['w1_bytes'] / MiB:.1f} MiB, W3 {facts['w3_bytes'] / MiB:.1f} MiB"
                 + (f", W1-big {facts['big_bytes'] / MiB:.1f} MiB." if facts.get("big_bytes") else "."))
    lines += ["", *verdict(by_key)]
    return "\n".join(lines) + "\n"


def verdict(by_key: dict[tuple[str, str], Result]) -> list[str]:
    """The issue's targets, checked against this run's numbers."""
    def get(workload: str, tool: str) -> Result | None:
        return by_key.get((workload, tool))

    lines = ["Against the targets of the issue, in this run:", ""]
    ours_w1, skopeo_w1 = get("W1", "ours"), get("W1", "skopeo")
    if ours_w1 and skopeo_w1:
        ratio = ours_w1.median / skopeo_w1.median
        lines.append(f"- W1 median wall ≤ skopeo's (aim 0.8×): {ratio:.2f}× "
                     f"({'met' if ratio <= 1 else 'NOT met'}; {'aim met' if ratio <= 0.8 else 'aim not met'}).")
    w2 = get("W2", "ours")
    if w2:
        lines.append(f"- W2 moves zero blob bytes: {max(w2.uploads)} blob upload requests "
                     f"({'met' if max(w2.uploads) == 0 else 'NOT met'}).")
    w4 = get("W4", "ours")
    if w4:
        lines.append(f"- W4 ≤ 2 requests per image: {max(w4.requests)} requests "
                     f"({'met' if max(w4.requests) <= 2 else 'NOT met'}).")
    ours_rows = [r for (w, t), r in by_key.items() if t.startswith("ours")]
    peak = max(r.rss_mib for r in ours_rows)
    lines.append(f"- Peak RSS within 64 MB (61.0 MiB): {peak:.1f} MiB at most ({'met' if peak <= 61.0 else 'NOT met'}).")
    one_stream, big = get("W1", "ours c=1"), get("W1-big", "ours")
    if one_stream and big:
        lines.append(f"- Flat from 64 MiB to 512 MiB layers: one 64 MiB layer at a time (W1, c=1) peaks at "
                     f"{one_stream.rss_mib:.1f} MiB, one 512 MiB layer (W1-big) at {big.rss_mib:.1f} MiB.")
    return lines


BEGIN, END = "<!-- bench/run.py output begins -->", "<!-- bench/run.py output ends -->"
AIRGAP_BEGIN, AIRGAP_END = "<!-- bench/run.py airgap output begins -->", "<!-- bench/run.py airgap output ends -->"


def write_report(path: Path, text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the generated part of ``path`` (between ``begin`` and ``end``), keeping what is around it.

    A file without those markers gets the block appended.
    """
    block = f"{begin}\n{text}{end}\n"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        path.write_text(head + block + ("\n" + tail if tail else ""))
    elif old:
        path.write_text(old.rstrip("\n") + "\n\n" + block)
    else:
        path.write_text(f"# Performance\n\n{block}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in WORKERS:
        WORKERS[argv[0]](json.loads(argv[1]) if len(argv) > 1 else {})
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per tool and workload (default 5)")
    parser.add_argument("--layer-mib", type=int, default=64, help="W1 layer size in MiB (default 64)")
    parser.add_argument("--big", action="store_true", help="add W1-big: one 512 MiB layer")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="our blobs in flight (default: the engine's DEFAULT_CONCURRENCY)")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false",
                        help=f"W1 and W3: skip timing ours at the other concurrencies of {', '.join(map(str, SWEEP))}")
    parser.add_argument("--tags", type=int, default=500, help="W5 tag count (default 500)")
    parser.add_argument("--resolve-concurrency", type=int, default=8, help="W5 parallel resolves (default 8)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"), help="markdown file to write")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--airgap", choices=("with", "only", "skip"), default="with",
                        help="W6/W7 registry -> oci-archive -> registry: with the rest (default), only, or skip")
    args = parser.parse_args(argv)
    args.argv = argv
    if args.concurrency is None:
        args.concurrency = _collection_imports()["engine"].DEFAULT_CONCURRENCY
    started = time.perf_counter()
    load_before = os.getloadavg()
    if args.airgap != "skip":
        airgap = report_airgap(*bench_airgap(args), args)
        print(airgap)
        if not args.no_write:
            write_report(Path(args.out), airgap, AIRGAP_BEGIN, AIRGAP_END)
        if args.airgap == "only":
            return 0
    results, facts = bench(args)
    table = report(results, facts, args)
    load_after = os.getloadavg()
    table += (f"\nTotal benchmark time: {time.perf_counter() - started:.0f} s. Load average (1, 5, 15 min) "
              f"before: {', '.join(f'{x:.2f}' for x in load_before)}; after: "
              f"{', '.join(f'{x:.2f}' for x in load_after)}.\n")
    print(table)
    if not args.no_write:
        write_report(Path(args.out), table)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
