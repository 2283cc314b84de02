"""Benchmark mirroring side by side with ``skopeo sync``, in the same run.

Run from the checkout with the project venv:

    .venv/bin/python bench/mirror.py                 # 3 rounds, writes docs/performance.md
    .venv/bin/python bench/mirror.py --rounds 1 --no-write

Workloads (each tool in a fresh process per timed run, tool order alternated by round):

* **M1** a 100-tag repository mirrored between two local Distribution registries (loopback), into a
  fresh destination each time; **M1 no-op** the same mirror again onto the complete destination.
* **M2** a 50-tag repository with BOTH registries behind ``/work/shared/tools/latency_proxy.py``
  (10 ms each way, so 20 ms per round trip; a new connection pays one more trip); **M2 no-op** again.
* **R** 500 tags resolved: ``registry_manifest_info`` with ``references`` run as Ansible runs a module
  (a fresh Python process given its arguments file: interpreter start-up, imports and argument
  parsing included) against a loop of ``skopeo inspect --raw`` (one process per tag).

Ours in M1/M2 is ``ansible-playbook`` with one ``registry_copy`` task, in two spellings of the one
mirror engine: ``tags: ['.*']`` (the plain mirror the module documents first) and ``select: {}``, so
Ansible's start-up is included; skopeo is ``skopeo sync --src docker --dest docker``. The loopback
ratios are also given net of Ansible's start-up: (ours - a playbook that only pings) / skopeo. Client CPU per request is the user+system CPU of our
module process in R (minus an import-only process's), divided by the requests the registry logged.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.rig.images import RawPusher, make_image, make_layer
from tests.rig.playbook import PlaybookRunner, build_and_install
from tests.rig.registry_server import RegistryServer, free_port

LATENCY_PROXY = Path("/work/shared/tools/latency_proxy.py")
BEGIN, END = "<!-- bench/mirror.py: begin -->", "<!-- bench/mirror.py: end -->"
BIN = Path(sys.executable).parent


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Proxy:
    """latency_proxy.py in front of a registry; ``host`` is what the tools talk to."""

    def __init__(self, target: str, one_way_ms: float) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, str(LATENCY_PROXY), str(self.port), target,
                                      str(one_way_ms)])
        deadline = time.monotonic() + 10
        import socket
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("latency proxy did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def seed_repository(registry: RegistryServer, repo: str, tags: int) -> list[str]:
    """``tags`` small single-platform images sharing a base layer, each with its own top layer."""
    pusher = RawPusher.for_registry(registry)
    base = make_layer("bench-base", size=64 * 1024)
    names = [f"1.{i // 10}.{i % 10}" for i in range(tags)]
    for name in names:
        pusher.push(repo, make_image(f"{repo}:{name}", layers=[base, make_layer(f"{repo}:{name}", size=8 * 1024)]),
                    tag=name)
    return names


def timed(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``argv``; return (wall seconds, child CPU seconds, stdout). Fails loudly on a non-zero exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)[:200]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


class Ours:
    """ansible-playbook with one registry_copy task, against an installed build of this checkout
    (the test rig's playbook runner: hermetic environment, results read from its event callback)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        installed = build_and_install(workdir)
        self.collections = installed.collections_path
        self.runner = PlaybookRunner(installed, workdir)

    def mirror(self, src: str, dest: str, concurrency: int, spelling: str = "tags") -> tuple[float, dict[str, Any]]:
        """One mirror task, ``spelling`` ``tags`` (``tags: ['.*']``) or ``select`` (``select: {}``)."""
        chosen: dict[str, Any] = {"tags": [".*"]} if spelling == "tags" else {"select": {}}
        task = {"name": "mirror", "ocireg.registry.registry_copy": {
            "src": src, "dest": dest, **chosen, "plain_http": True, "concurrency": concurrency}}
        started = time.perf_counter()
        run = self.runner.run(tasks=[task])
        wall = time.perf_counter() - started
        if run.rc != 0:
            raise RuntimeError(run.explain())
        return wall, run.task("mirror")["summary"]

    def ping(self) -> float:
        """A playbook with one ansible.builtin.ping task: what Ansible's start-up costs in this run."""
        started = time.perf_counter()
        run = self.runner.run(tasks=[{"name": "ping", "ansible.builtin.ping": {}}])
        if run.rc != 0:
            raise RuntimeError(run.explain())
        return time.perf_counter() - started

    def module(self, name: str, args: dict[str, Any]) -> tuple[float, float, str]:
        """The module as Ansible runs it on the target: a fresh interpreter given an arguments file."""
        path = self.workdir / "args.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"_ansible_check_mode": False, **args}}))
        env = {**os.environ, "PYTHONPATH": str(self.collections)}
        return timed([sys.executable, "-m", f"ansible_collections.ocireg.registry.plugins.modules.{name}",
                      str(path)], env)


def skopeo_sync(src: str, dest: str) -> float:
    wall, _cpu, _out = timed(["skopeo", "sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false",
                              "--dest-tls-verify=false", src, dest])
    return wall


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bench(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, dict[str, list[float]]] = {}
    facts: dict[str, Any] = {"load_before": os.getloadavg()}

    def record(workload: str, tool: str, seconds: float) -> None:
        results.setdefault(workload, {}).setdefault(tool, []).append(seconds)
        log(f"  {workload:10s} {tool:7s} {seconds:7.3f} s")

    workdir = Path(tempfile.mkdtemp(prefix="ocireg-bench-mirror-"))
    servers: list[RegistryServer] = []
    proxies: list[Proxy] = []

    def registry() -> RegistryServer:
        server = RegistryServer().start()
        servers.append(server)
        return server

    try:
        ours = Ours(workdir)
        source = registry()
        seed_repository(source, "m1/app", 100)
        seed_repository(source, "m2/app", 50)
        resolve_tags = seed_repository(source, "r/app", args.resolve_tags) if args.rounds and args.resolve_tags else []
        src_proxy = Proxy(source.host, args.latency_ms)
        proxies.append(src_proxy)

        def one_mirror(workload: str, src_host: str, repo: str, dest_of: Callable[[RegistryServer], str],
                       tags: int, round_number: int) -> None:
            tools = SPELLINGS + ["skopeo"]
            shift = round_number % len(tools)
            for tool in tools[shift:] + tools[:shift]:  # the order rotates by round
                dest = registry()
                target = dest_of(dest)
                if tool in SPELLINGS:
                    wall, summary = ours.mirror(f"{src_host}/{repo}", f"{target}/mirror/app", args.concurrency, tool)
                    assert summary["copied"] == tags and summary["failed"] == 0, summary
                    record(workload, tool, wall)
                    record(workload, f"{tool} inside", summary["seconds"])
                    wall, summary = ours.mirror(f"{src_host}/{repo}", f"{target}/mirror/app", args.concurrency, tool)
                    assert summary["already_present"] == tags and summary["copied"] == 0, summary
                    record(workload + " no-op", tool, wall)
                    record(workload + " no-op", f"{tool} inside", summary["seconds"])
                else:
                    record(workload, "skopeo", skopeo_sync(f"{src_host}/{repo}", f"{target}/mirror"))
                    record(workload + " no-op", "skopeo", skopeo_sync(f"{src_host}/{repo}", f"{target}/mirror"))
                dest.stop()

        def behind_proxy(dest: RegistryServer) -> str:
            proxy = Proxy(dest.host, args.latency_ms)
            proxies.append(proxy)
            return proxy.host

        for round_number in range(args.rounds):
            log(f"round {round_number + 1} of {args.rounds} (load {os.getloadavg()[0]:.2f})")
            record("ansible", "ping", ours.ping())
            one_mirror("M1", source.host, "m1/app", lambda dest: dest.host, 100, round_number)
            one_mirror("M2", src_proxy.host, "m2/app", behind_proxy, 50, round_number)
            if not args.resolve_tags:
                continue
            # R: 500 resolves.
            references = [f"{source.host}/r/app:{tag}" for tag in resolve_tags]
            mark = source.mark()
            wall, cpu, stdout = ours.module("registry_manifest_info", {
                "references": references, "plain_http": True, "max_concurrency": args.resolve_concurrency})
            requests_sent = len(source.requests_since(mark))
            assert len(json.loads(stdout)["results"]) == len(references)
            record("R", "ours", wall)
            facts.setdefault("r_cpu", []).append(cpu)
            facts.setdefault("r_requests", []).append(requests_sent)
            _wall, idle_cpu, _output = ours.module("registry_manifest_info", {
                "references": references[:1], "plain_http": True})
            facts.setdefault("r_startup_cpu", []).append(idle_cpu)
            loop = "; ".join(f"skopeo inspect --raw --tls-verify=false docker://{ref} >/dev/null"
                             for ref in references)
            wall, _cpu, _output = timed(["bash", "-c", loop])
            record("R", "skopeo", wall)
        if args.sweep:
            log("concurrency sweep on M2")
            for concurrency in args.sweep:
                dest = registry()
                target = behind_proxy(dest)
                wall, summary = ours.mirror(f"{src_proxy.host}/m2/app", f"{target}/mirror/app", concurrency, "tags")
                assert summary["copied"] == 50, summary
                results.setdefault("sweep M2", {}).setdefault(f"c={concurrency}", []).append(wall)
                log(f"  M2 c={concurrency:<3d} {wall:7.3f} s")
                dest.stop()
    finally:
        for proxy in proxies:
            proxy.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    facts["load_after"] = os.getloadavg()
    facts["results"] = results
    return facts


#: The spellings of the one mirror engine that are timed (``tags`` is the one the targets are for).
SPELLINGS = ["tags", "select"]
#: Ratio targets (ours / skopeo): behind the delay at the playbook level, on loopback net of Ansible's start-up.
TARGETS = {"M1": 1.0, "M1 no-op": 1.0, "M2": 0.15, "M2 no-op": 0.3, "R": 0.1}
LABELS = {"M1": "M1 mirror 100 tags, loopback", "M1 no-op": "M1 no-op re-run",
          "M2": "M2 mirror 50 tags, 10 ms each way", "M2 no-op": "M2 no-op re-run",
          "R": "R resolve 500 tags (module level)"}
#: Workloads whose target is judged net of a playbook that only pings (loopback: start-up dominates).
NET_OF_PING = ("M1", "M1 no-op")


def report(facts: dict[str, Any], args: argparse.Namespace) -> str:
    results = facts["results"]
    load = facts["load_before"], facts["load_after"]
    skopeo_version = subprocess.run(["skopeo", "--version"], capture_output=True, text=True,
                                    check=False).stdout.split()[-1]
    ping = median(results["ansible"]["ping"])
    setup = (f"`bench/mirror.py`, one run, {args.rounds} rounds (medians, seconds); {platform.machine()}, "
             f"{os.cpu_count()} cores shared with other jobs (load average {load[0][0]:.2f} before, "
             f"{load[1][0]:.2f} after); skopeo {skopeo_version}.")
    tools = (f"**tags** / **select** = `ansible-playbook` with one `registry_copy` task (`src`, `dest` and "
             f"`tags: ['.*']`, or `select: {{}}`: two spellings of the one mirror engine, `concurrency: "
             f"{args.concurrency}`), start-up included; **skopeo** = `skopeo sync --src docker --dest docker`. "
             "Small single-platform images (a shared 64 KiB base layer and an 8 KiB layer each). M2: both "
             f"registries behind `latency_proxy.py` ({args.latency_ms:g} ms each way). M1's ratios are net of "
             f"Ansible's start-up: (ours - {ping:.3f} s, a playbook whose only task is `ansible.builtin.ping`, "
             "same run) / skopeo.")
    lines = [
        BEGIN,
        "## Mirroring: `registry_copy` against `skopeo sync`",
        "",
        setup,
        tools,
        "",
        "| workload | tags | select | skopeo | tags / skopeo | select / skopeo | target | met (tags) | "
        "tags in-module |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for key, label in LABELS.items():
        if key not in results:
            continue
        theirs = median(results[key]["skopeo"])
        if key == "R":
            ours = median(results[key]["ours"])
            ratio = ours / theirs
            lines.append(f"| {label} | {ours:.3f} | | {theirs:.3f} | {ratio:.2f}× | | ≤ {TARGETS[key]:g}× | "
                         f"{'yes' if ratio <= TARGETS[key] else '**no**'} | |")
            continue
        less = ping if key in NET_OF_PING else 0.0
        walls = {tool: median(results[key][tool]) for tool in SPELLINGS}
        ratios = {tool: (wall - less) / theirs for tool, wall in walls.items()}
        net = " (net)" if less else ""
        lines.append(f"| {label} | {walls['tags']:.3f} | {walls['select']:.3f} | {theirs:.3f} | "
                     f"{ratios['tags']:.2f}×{net} | {ratios['select']:.2f}×{net} | ≤ {TARGETS[key]:g}× | "
                     f"{'yes' if ratios['tags'] <= TARGETS[key] else '**no**'} | "
                     f"{median(results[key]['tags inside']):.3f} |")
    lines += ["", "*tags in-module* is the run's own time (`summary.seconds`), without Ansible and module start-up.", ""]
    if "r_cpu" in facts:
        cpu = median(facts["r_cpu"]) - median(facts["r_startup_cpu"])
        per_request_ms = 1000 * cpu / median(facts["r_requests"])
        lines += [f"Client CPU per request (R: module process CPU minus a one-reference run's, over the "
                  f"{median(facts['r_requests']):.0f} requests the registry logged): {per_request_ms:.2f} ms.", ""]
    if "sweep M2" in results:
        sweep = results["sweep M2"]
        lines += ["Concurrency sweep (M2, one run each): " + ", ".join(
            f"{key} {median(values):.2f} s" for key, values in sweep.items()) + ".", ""]
    lines.append(END)
    return "\n".join(lines)


def write_report(path: Path, text: str) -> None:
    current = path.read_text() if path.exists() else ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        path.write_text(head + text + tail)
    else:
        path.write_text(current.rstrip("\n") + "\n\n" + text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="registry_copy concurrency (default 8)")
    parser.add_argument("--latency-ms", type=float, default=10.0, help="one-way delay of M2 (default 10)")
    parser.add_argument("--resolve-tags", type=int, default=500, help="R's tags; 0 leaves R out")
    parser.add_argument("--resolve-concurrency", type=int, default=8)
    parser.add_argument("--sweep", type=lambda text: [int(v) for v in text.split(",")], default=[],
                        help="also time M2 at these concurrencies, e.g. 4,8,16,32")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    facts = bench(args)
    if not args.rounds:  # a sweep only
        print(json.dumps(facts["results"]))
        return 0
    text = report(facts, args)
    print(text)
    print(json.dumps(facts["results"]), file=sys.stderr)
    if not args.no_write:
        write_report(ROOT / "docs" / "performance.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
