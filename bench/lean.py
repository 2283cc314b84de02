"""Client CPU per request, module start-up and the small-request workloads, side by side with skopeo.

Run from the checkout with the project venv (see bench/README.md, "Lean"):

    .venv/bin/python bench/lean.py                       # all parts, about 6 minutes on 2 busy cores
    .venv/bin/python bench/lean.py --only cpu startup    # the in-process parts only, about a minute
    .venv/bin/python bench/lean.py --json out.json       # the raw figures as well

Parts (``--only`` picks some):

* ``cpu``: client CPU (``time.process_time``, this process only; the registry
  is another process) per request, sequential, on one connection, for a
  manifest HEAD, a manifest GET and one tag-list page, with
  ``Repository`` (``resolve`` / ``fetch_manifest`` / ``tags``), a plain
  ``requests.Session``, a urllib3 ``PoolManager`` and ``http.client``;
* ``startup``: ``registry_manifest_info``, ``registry_tag`` and
  ``registry_copy``, timed from the spawn to the first ``connect`` of the
  process (``bench/first_request.py``): Python start, imports and argument
  parsing. Once run directly from the checkout with ``.pyc`` caches, and once
  as the AnsiballZ file the installed ansible-core (the ``ansible`` beside this
  Python) sends to a managed host, run as ``python AnsiballZ_x.py``: its zip
  holds sources only, so every file imported from it is compiled on every run;
* ``W4``: a no-op re-copy (the W1 image is already at the destination):
  ``registry_copy`` run directly vs ``skopeo copy``;
* ``W5``: resolve 500 tags (``bench/run.py worker-resolve``) vs a loop of
  ``skopeo inspect --raw``;
* ``plan``: ``registry_prune`` in check mode over 2,000 tags (1,600
  digests, ``keep_latest: 10``), run directly, vs ``skopeo inspect --no-tags``
  per tag over an evenly spaced sample, scaled to every tag; the registry
  process's CPU during our runs is reported beside them (both share the
  machine's cores). ``--timeline`` adds one run under ``bench/plan_timeline.py``:
  its phases, and every quarter second the CPU of each process and the requests
  in flight; with ``--profile`` a CPU profile of every thread of that run;
* ``W1``: bench/run.py's W1 (4 layers of ``--layer-mib`` MiB across
  registries), ``worker-copy`` vs ``skopeo copy``, with peak RSS.

Every timed tool runs in the same rounds, order rotated; medians are
reported. Nothing here asserts: the output is a markdown table of figures and
ratios with the goals beside them.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import run as base  # noqa: E402 - bench/run.py, beside this file
from retention import Seeder  # noqa: E402 - bench/retention.py

PARTS = ("cpu", "startup", "W4", "W5", "plan", "W1")
MODULES = ("registry_manifest_info", "registry_tag", "registry_copy")
FLOOR_IMPORTS = "import ansible.module_utils.basic, requests"
GOALS = {"cpu": 0.4e-3, "startup": 0.25, "W4": 5.0, "W5": 0.10, "plan": 0.08, "W1": 1.0, "rss_mib": 64.0}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def collections_path() -> str:
    import tests.conftest  # noqa: F401 - puts ansible_collections.ocireg.registry on sys.path

    return str(tests.conftest.COLLECTIONS_PATH)


# --- cpu: client CPU per request ------------------------------------------------------------------


def cpu_clients(host: str, repo: str, tag: str) -> dict[str, dict[str, Callable[[], Any]]]:
    """Per client, per operation, a callable sending that request once (body read, connection kept)."""
    collections_path()
    import requests
    import urllib3

    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
    from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions

    url = f"http://{host}"
    manifest, tags = f"/v2/{repo}/manifests/{tag}", f"/v2/{repo}/tags/list"
    accept = {"Accept": base.ACCEPT}
    repository = Registry(host, TransportOptions(plain_http=True)).repository(repo)
    session = requests.Session()
    pool = urllib3.PoolManager()
    conn = http.client.HTTPConnection(host)

    def raw(method: str, path: str, headers: dict[str, str]) -> bytes:
        conn.request(method, path, headers=headers)
        return conn.getresponse().read()

    return {
        "Repository": {"HEAD manifest": lambda: repository.resolve(tag),
                       "GET manifest": lambda: repository.fetch_manifest(tag),
                       "GET tag list": repository.tags},
        "requests.Session": {"HEAD manifest": lambda: session.head(url + manifest, headers=accept, timeout=30),
                             "GET manifest": lambda: session.get(url + manifest, headers=accept, timeout=30).content,
                             "GET tag list": lambda: session.get(url + tags, timeout=30).json()},
        "urllib3.PoolManager": {"HEAD manifest": lambda: pool.request("HEAD", url + manifest, headers=accept),
                                "GET manifest": lambda: pool.request("GET", url + manifest, headers=accept).data,
                                "GET tag list": lambda: json.loads(pool.request("GET", url + tags).data)},
        "http.client": {"HEAD manifest": lambda: raw("HEAD", manifest, accept),
                        "GET manifest": lambda: raw("GET", manifest, accept),
                        "GET tag list": lambda: json.loads(raw("GET", tags, {}))},
    }


def bench_cpu(host: str, repo: str, tag: str, count: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median over rounds of CPU seconds per request, per client and operation."""
    clients = cpu_clients(host, repo, tag)
    samples: dict[str, dict[str, list[float]]] = {c: {o: [] for o in ops} for c, ops in clients.items()}
    for ops in clients.values():
        for call in ops.values():  # warm: connections open, first-use caches filled
            for _warm in range(20):
                call()
    for rnd in range(rounds):
        for client in base.rotated(list(clients), rnd):
            for operation, call in clients[client].items():
                started = time.process_time()
                for _request in range(count):
                    call()
                samples[client][operation].append((time.process_time() - started) / count)
    return {c: {o: statistics.median(v) for o, v in ops.items()} for c, ops in samples.items()}


def profile_cpu(host: str, repo: str, tag: str, count: int, limit: int = 25) -> str:
    """cProfile of ``count`` of each of Repository's three requests: the top functions by own time."""
    import cProfile
    import io
    import pstats

    clients = cpu_clients(host, repo, tag)["Repository"]
    for call in clients.values():
        call()
    profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
    profiler.enable()
    for call in clients.values():
        for _request in range(count):
            call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(limit)
    return out.getvalue() + call_counts(host, repo, tag, count)


def call_counts(host: str, repo: str, tag: str, count: int) -> str:
    """Python function calls per request, per client and operation (cProfile's count: load does not change it)."""
    import cProfile
    import pstats

    lines = ["Python function calls per request (cProfile):", "",
             "| client | HEAD manifest | GET manifest | GET tag list |", "|---|---:|---:|---:|"]
    for client, ops in cpu_clients(host, repo, tag).items():
        row = []
        for call in ops.values():
            for _warm in range(3):
                call()
            profiler = cProfile.Profile()
            profiler.enable()
            for _request in range(count):
                call()
            profiler.disable()
            row.append(f"{pstats.Stats(profiler).total_calls / count:,.0f}")  # type: ignore[attr-defined]
        lines.append(f"| {client} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


# --- start-up -------------------------------------------------------------------------------------


def module_args(module: str, host: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    args = {
        "registry_manifest_info": {"reference": f"{host}/lean/app:t0"},
        "registry_tag": {"repository": f"{host}/lean/app", "source": ":t0", "tags": ["t0"]},
        "registry_copy": {"src": f"{host}/lean/app:t0", "dest": f"{host}/lean/copy:t0"},
    }.get(module, {})
    return {"ANSIBLE_MODULE_ARGS": {**args, "plain_http": True, **(extra or {})}}


#: A module with nothing of ours: Ansible's module base, ``requests``, the same argument parsing, one connect.
FLOOR_MODULE = '''#!/usr/bin/python
import socket

import requests  # noqa: F401 - imported as every module of ours imports it
from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec={"host": {"type": "str"}, "port": {"type": "int"}})
    try:
        socket.create_connection((module.params["host"], module.params["port"]), timeout=5).close()
    except OSError:
        pass
    module.exit_json(changed=False)


if __name__ == "__main__":
    main()
'''


def ansiballz(module: str, args: dict[str, Any], workdir: Path) -> Path:
    """The AnsiballZ file the installed ansible-core (the ``ansible`` beside this Python) sends to a managed host
    for ``module`` with ``args``, kept with ``ANSIBLE_KEEP_REMOTE_FILES`` from one ad-hoc run on localhost with
    this Python as the interpreter. Run as ``python AnsiballZ_x.py``, it is what a managed host runs: the
    wrapper decodes the zip (sources only, no bytecode) to a temporary file, puts it first on ``sys.path``,
    imports Ansible's loader and runs the module with ``runpy``, so every file it imports from the zip is
    compiled on every run (zipimport neither reads nor writes ``.pyc`` for sources). ``module`` is a name
    in this collection, or ``floor`` for :data:`FLOOR_MODULE`."""
    collections = workdir / "collections"
    if not collections.exists():
        floor = collections / "ansible_collections" / "ocireg_bench" / "floor"
        (floor / "plugins" / "modules").mkdir(parents=True)
        (floor / "meta").mkdir()
        (floor / "galaxy.yml").write_text("namespace: ocireg_bench\nname: floor\nversion: 1.0.0\nreadme: x\n"
                                          "authors: [bench]\n")
        (floor / "meta" / "runtime.yml").write_text("requires_ansible: '>=2.15'\n")
        (floor / "plugins" / "modules" / "floor.py").write_text(FLOOR_MODULE)
        (collections / "ansible_collections" / "ocireg").symlink_to(
            Path(collections_path()) / "ansible_collections" / "ocireg")
    remote = workdir / f"remote-{module}"
    fqcn = "ocireg_bench.floor.floor" if module == "floor" else f"ocireg.registry.{module}"
    env = {**os.environ, "ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TMP": str(remote),
           "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-local"), "ANSIBLE_COLLECTIONS_PATH": str(collections),
           "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    ansible_bin = Path(sys.executable).parent / "ansible"
    proc = subprocess.run([str(ansible_bin), "localhost", "-i", "localhost,", "-c", "local", "-m", fqcn,  # noqa: S603
                           "-a", json.dumps(args), "-e", f"ansible_python_interpreter={sys.executable}"],
                          capture_output=True, text=True, env=env, check=False)
    found = sorted(remote.rglob("AnsiballZ_*.py"))
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"ansible -m {fqcn} failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return found[-1]


def startup_env(mode: str, workdir: Path) -> dict[str, str]:
    """The environment of a start-up run. ``cached``: ``.pyc`` files written once to a private cache and read
    from then on (a developer's checkout); ``ansiballz``: the same, but Ansible's wrapper imports ours and
    ``ansible.module_utils`` from its zip, where nothing is cached."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    if mode == "cached":
        env["PYTHONPATH"] = collections_path()
    return env


def run_module(module: str, args: dict[str, Any], workdir: Path, *, stamp: bool = False,
               script: Path | None = None, env: dict[str, str] | None = None,
               ) -> tuple[float, tuple[float, float] | None, dict[str, Any]]:
    """Run a module directly; return its wall time, its start-up (spawn to first connect: wall and CPU s) and
    its result. ``script``: run that AnsiballZ file (:func:`ansiballz`, its arguments inside) instead."""
    args_file = workdir / f"{module}.json"
    args_file.write_text(json.dumps(args))
    stamp_file = workdir / "stamp"
    stamp_file.unlink(missing_ok=True)
    dotted = f"ansible_collections.ocireg.registry.plugins.modules.{module}"
    if script is not None:
        argv = [sys.executable, str(HERE / "first_request.py"), str(stamp_file), str(script)]
    elif stamp:
        argv = [sys.executable, str(HERE / "first_request.py"), str(stamp_file), dotted, str(args_file)]
    else:
        argv = [sys.executable, "-m", dotted, str(args_file)]
    env = env or {**os.environ, "PYTHONPATH": collections_path()}
    spawned = time.time()
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)  # noqa: S603 - fixed
    wall = time.perf_counter() - started
    result = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    if result.get("failed") or proc.returncode != 0:
        raise RuntimeError(f"{module} failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    first = None
    if (stamp or script is not None) and stamp_file.exists():
        at, cpu = (float(part) for part in stamp_file.read_text().split())
        first = (at - spawned, cpu)
    return wall, first, result


#: How the start-up is measured: from a checkout with ``.pyc`` caches, and as Ansible ships a module.
STARTUP_MODES = ("cached", "ansiballz")
#: Per mode, the row no module of ours can go under.
FLOORS = {"cached": "python + ansible basic + requests", "ansiballz": "floor module: AnsibleModule + requests"}


def bench_startup(host: str, workdir: Path, rounds: int) -> dict[str, tuple[float, float]]:
    """Per process and mode: median wall s and median CPU s, spawn to first connect (``-c`` floors: to exit)."""
    hostname, _colon, port = host.rpartition(":")
    scripts = {module: ansiballz(module, module_args(module, host)["ANSIBLE_MODULE_ARGS"], workdir)
               for module in MODULES}
    scripts[FLOORS["ansiballz"]] = ansiballz("floor", {"host": hostname, "port": int(port)}, workdir)
    samples: dict[str, list[tuple[float, float]]] = {}
    # What every module pays before any of our code: Python, then Ansible's module base and requests.
    floors = {"python -c pass": "pass", FLOORS["cached"]: FLOOR_IMPORTS}
    for mode in STARTUP_MODES:
        env = startup_env(mode, workdir)
        # name -> (module, AnsiballZ script); in cached mode the module runs from the checkout.
        runs: dict[str, tuple[str, Path | None]] = (
            {name: (name, None) for name in MODULES} if mode == "cached"
            else {name: (name if name in MODULES else "floor", script) for name, script in scripts.items()})
        mode_floors = floors if mode == "cached" else {}
        for name, code in mode_floors.items():  # one run to fill the cache
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
        for name, (module, script) in runs.items():  # fills the cache of what is not in Ansible's zip
            run_module(module, module_args(module, host), workdir, stamp=True, script=script, env=env)
        for rnd in range(rounds):
            for name, code in mode_floors.items():
                started = time.perf_counter()
                out = subprocess.run([sys.executable, "-c", f"{code}; import time; print(time.process_time())"],
                                     check=True, capture_output=True, text=True, env=env).stdout
                samples.setdefault(f"{name} ({mode})", []).append((time.perf_counter() - started, float(out)))
            for name in base.rotated(list(runs), rnd):
                module, script = runs[name]
                first = run_module(module, module_args(module, host), workdir, stamp=True, script=script, env=env)[1]
                if first is None:
                    raise RuntimeError(f"{name} sent no request")
                samples.setdefault(f"{name} ({mode})", []).append(first)
    return {name: (statistics.median(w for w, _c in v), statistics.median(c for _w, c in v))
            for name, v in samples.items()}


def import_times(module: str, workdir: Path, limit: int = 12) -> list[tuple[str, float]]:
    """``python -X importtime`` of a module's imports: the slowest (cumulative) in this checkout, cached."""
    dotted = f"ansible_collections.ocireg.registry.plugins.modules.{module}"
    env = startup_env("cached", workdir)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {dotted}"], capture_output=True,
                          text=True, env=env, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((name, int(cumulative) / 1e6))
    top_level = [(n.strip(), t) for n, t in rows if not n.startswith("  ")]
    return sorted(top_level, key=lambda row: -row[1])[:limit]


# --- the workloads against skopeo -----------------------------------------------------------------


def children_cpu() -> float:
    """User + system CPU seconds of every child process this one has waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def with_cpu(call: Callable[[], Any]) -> tuple[Any, float]:
    """``call()``'s answer and the CPU its child processes used (load on the machine barely changes it)."""
    before = children_cpu()
    answer = call()
    return answer, children_cpu() - before


def skopeo_inspect_loop(host: str, refs: Sequence[str], raw: bool) -> float:
    flag = "--raw" if raw else "--no-tags"
    script = "\n".join(f"skopeo inspect {flag} --tls-verify=false docker://{host}/{ref} >/dev/null" for ref in refs)
    return base.measured(["/bin/sh", "-ec", script]).wall


def bench_w4(source: Any, dest: Any, workdir: Path, rounds: int) -> dict[str, list[float]]:
    args = {"ANSIBLE_MODULE_ARGS": {"src": f"{source.host}/w1/app:v1", "dest": f"{dest.host}/w4/app:v1",
                                    "plain_http": True}}
    run_module("registry_copy", args, workdir)  # the destination has it from here on
    out: dict[str, list[float]] = {"ours": [], "skopeo": [], "requests": [], "ours cpu": [], "skopeo cpu": []}
    for rnd in range(rounds):
        for tool in base.rotated(["ours", "skopeo"], rnd):
            marks = source.mark(), dest.mark()
            if tool == "ours":
                (wall, _first, result), cpu = with_cpu(lambda: run_module("registry_copy", args, workdir))
                if result.get("changed"):
                    raise RuntimeError("W4 copied: the destination should have had the image")
                out["requests"].append(len(source.requests_since(marks[0])) + len(dest.requests_since(marks[1])))
            else:
                run, cpu = with_cpu(lambda: base.skopeo(source.host, "w1/app", dest.host, "w4/app"))
                wall = run.wall
            out[tool].append(wall)
            out[f"{tool} cpu"].append(cpu)
    return out


def bench_w5(source: Any, tags: Sequence[str], rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"ours": [], "skopeo": [], "ours in-process": [], "ours cpu": [], "skopeo cpu": []}
    for rnd in range(rounds):
        for tool in base.rotated(["ours", "skopeo"], rnd):
            if tool == "ours":
                run, cpu = with_cpu(lambda: base.measured(base.self_command("worker-resolve", {
                    "host": source.host, "repo": "w5/app", "tags": list(tags), "concurrency": 8})))
                run_out = json.loads(run.stdout)
                if run_out["resolved"] != len(tags):
                    raise RuntimeError(f"W5 resolved {run_out['resolved']} of {len(tags)}")
                out["ours in-process"].append(run_out["duration"])
                out[tool].append(run.wall)
            else:
                wall, cpu = with_cpu(lambda: skopeo_inspect_loop(source.host, [f"w5/app:{t}" for t in tags], raw=True))
                out[tool].append(wall)
            out[f"{tool} cpu"].append(cpu)
    return out


def process_cpu(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_plan(source: Any, tags: Sequence[str], workdir: Path, rounds: int, sample: int,
               timeline: bool = False, profile: bool = False) -> dict[str, Any]:
    """The plan against the skopeo loop; with ``timeline`` one more run of ours under bench/plan_timeline.py
    (with ``profile``, a cProfile of every thread of it too)."""
    args = {"ANSIBLE_MODULE_ARGS": {"repository": f"{source.host}/plan/app", "keep_latest": 10,
                                    "max_delete_ratio": 1.0, "max_deletions": 10 ** 6, "plain_http": True,
                                    "_ansible_check_mode": True}}
    step = max(1, len(tags) // sample)
    picked = [f"plan/app:{t}" for t in list(tags)[::step][:sample]]
    out: dict[str, Any] = {"ours": [], "skopeo per tag": [], "requests": [], "sample": len(picked), "ours cpu": [],
                           "skopeo cpu per tag": [], "registry cpu": []}
    registry_pid = source._proc.pid  # pylint: disable=protected-access  # the rig's own registry process
    for rnd in range(rounds):
        for tool in base.rotated(["ours", "skopeo"], rnd):
            if tool == "ours":
                mark = source.mark()
                served = process_cpu(registry_pid)
                (wall, _first, result), cpu = with_cpu(lambda: run_module("registry_prune", args, workdir))
                out["registry cpu"].append(process_cpu(registry_pid) - served)
                out["requests"].append(len(source.requests_since(mark)))
                out["ours"].append(wall)
                out["ours cpu"].append(cpu)
                out["planned"] = {k: v for k, v in (result.get("summary") or {}).items() if k != "by_repository"}
            else:
                wall, cpu = with_cpu(lambda: skopeo_inspect_loop(source.host, picked, raw=False))
                out["skopeo per tag"].append(wall / len(picked))
                out["skopeo cpu per tag"].append(cpu / len(picked))
    if timeline:
        out["timeline"] = plan_timeline(args, workdir, registry_pid, profile)
    return out


def plan_timeline(args: dict[str, Any], workdir: Path, registry_pid: int, profile: bool) -> dict[str, Any]:
    """One run of ``registry_prune`` under bench/plan_timeline.py: its phases, CPU samples and (``profile``)
    the top of a CPU profile of every thread."""
    args_file, out_file, profile_file = workdir / "plan-args.json", workdir / "timeline.json", workdir / "plan.prof"
    args_file.write_text(json.dumps(args))
    argv = [sys.executable, str(HERE / "plan_timeline.py"), str(out_file), str(registry_pid),
            "ansible_collections.ocireg.registry.plugins.modules.registry_prune", str(args_file)]
    if profile:
        argv.append(str(profile_file))
    env = {**os.environ, "PYTHONPATH": collections_path()}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)  # noqa: S603 - fixed
    if proc.returncode != 0:
        raise RuntimeError(f"plan timeline failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    found = json.loads(out_file.read_text())
    if profile:
        import io
        import pstats

        text = io.StringIO()
        stats = pstats.Stats(str(profile_file), stream=text)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        found["profile"] = text.getvalue()
    return found


def plan_cpu_floor(plan: dict[str, Any]) -> float:
    """The least wall time the plan can take here: our CPU and the registry's (medians) spread over every core."""
    return (med(plan["ours cpu"]) + med(plan["registry cpu"])) / (os.cpu_count() or 1)


def timeline_text(found: dict[str, Any], width: float = 0.25) -> str:
    """The plan's phases (start, end, wall, CPU) and, per ``width`` seconds, the CPU of each process and the
    requests in flight."""
    lines = ["Plan timeline (one run under bench/plan_timeline.py; s from the module process's start):", "",
             "| phase | from s | to s | wall s | client CPU s |", "|---|---:|---:|---:|---:|"]
    for name, start, end, cpu_start, cpu_end in sorted(found["phases"], key=lambda row: (row[1], -row[2])):
        lines.append(f"| {name} | {start:.3f} | {end:.3f} | {end - start:.3f} | {cpu_end - cpu_start:.3f} |")
    lines += ["", f"Requests sent: {found['requests']}.", "",
              "| from s | to s | client CPU (cores) | registry CPU (cores) | requests in flight (mean) |",
              "|---:|---:|---:|---:|---:|"]
    samples = found["samples"]
    first, batch = samples[0], []
    for row in samples[1:]:
        batch.append(row)
        if row[0] - first[0] >= width or row is samples[-1]:
            span = row[0] - first[0]
            lines.append(f"| {first[0]:.2f} | {row[0]:.2f} | {(row[1] - first[1]) / span:.2f} | "
                         f"{(row[2] - first[2]) / span:.2f} | {sum(b[3] for b in batch) / len(batch):.1f} |")
            first, batch = row, []
    if "profile" in found:
        lines += ["", "```", found["profile"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def bench_w1(source: Any, rounds: int, layer_mib: int, workdir: Path) -> dict[str, list[float]]:
    image = base.make_image(workdir, "w1", [layer_mib * base.MiB] * 4)
    base.seed(source.url, "w1/app", image, "v1")
    out: dict[str, list[float]] = {"ours": [], "skopeo": [], "ours rss": [], "skopeo rss": []}
    concurrency = base._collection_imports()["engine"].DEFAULT_CONCURRENCY
    for rnd in range(rounds):
        for tool in base.rotated(["ours", "skopeo"], rnd):
            with base.Fresh() as dest:
                run = (base.ours(source.host, "w1/app", dest.host, "copy/app", concurrency) if tool == "ours"
                       else base.skopeo(source.host, "w1/app", dest.host, "copy/app"))
            out[tool].append(run.wall)
            out[f"{tool} rss"].append(run.rss_kib / 1024)
    return out


# --- report ---------------------------------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def cpu_ratio(ours: Sequence[float], theirs: Sequence[float]) -> str:
    return f"{med(ours):.2f} / {med(theirs):.2f} ({med(ours) / med(theirs):.2f}×)"


def report(figures: dict[str, Any], argv: Sequence[str], load: tuple[Any, Any]) -> str:
    lines = [f"Measured with `python bench/lean.py {' '.join(argv)}`".rstrip() + "; load average (1, 5, 15 min) "
             f"before {', '.join(f'{x:.2f}' for x in load[0])}, after {', '.join(f'{x:.2f}' for x in load[1])}.", ""]
    if "cpu" in figures:
        cpu = figures["cpu"]
        ops = list(next(iter(cpu.values())))
        lines += ["Client CPU per request (ms, sequential, one connection; median of rounds):", "",
                  "| client | " + " | ".join(ops) + " |", "|---|" + "---:|" * len(ops)]
        for client, values in cpu.items():
            lines.append(f"| {client} | " + " | ".join(f"{values[o] * 1000:.3f}" for o in ops) + " |")
        worst = max(cpu["Repository"].values())
        lines += ["", f"Goal: `Repository` at most {GOALS['cpu'] * 1000:.1f} ms on each: worst {worst * 1000:.3f} ms "
                  f"({'met' if worst <= GOALS['cpu'] else 'NOT met'}); `Repository` / urllib3 "
                  + ", ".join(f"{o} {cpu['Repository'][o] / cpu['urllib3.PoolManager'][o]:.2f}×" for o in ops)
                  + "; / http.client "
                  + ", ".join(f"{o} {cpu['Repository'][o] / cpu['http.client'][o]:.2f}×" for o in ops) + ".", ""]
    if "startup" in figures:
        start = figures["startup"]
        lines += ["Module start-up, spawn to first connect (medians of `--rounds` rounds, at least 5: fewer are raised "
                  "to 5 for start-up; CPU = the process's user + system time, what "
                  "the wall time is on an idle machine). *cached*: run from a checkout with `.pyc` files; *ansiballz*: "
                  "the AnsiballZ file this ansible-core sends to a managed host, run as `python AnsiballZ_x.py` "
                  "(its zip holds sources only, so every file of ours and of `ansible.module_utils` is compiled "
                  "on every run); the floor there is a module of the same shape with nothing of ours "
                  "(AnsibleModule, `requests`, one connect):", "",
                  "| process | mode | wall s | CPU s | CPU above the floor s |", "|---|---|---:|---:|---:|"]
        for name, (wall, cpu) in start.items():
            process, _space, mode = name.rpartition(" (")
            floor = start[f"{FLOORS[mode.rstrip(')')]} ({mode}"][1]
            # `python -c pass` runs below every floor: a negative "above the floor" would read as a saving.
            above = "—" if process == "python -c pass" else f"{cpu - floor:+.3f}"
            lines.append(f"| {process} | {mode.rstrip(')')} | {wall:.3f} | {cpu:.3f} | {above} |")
        for mode in STARTUP_MODES:
            worst = max(cpu for k, (_w, cpu) in start.items() if k.rpartition(" (")[0] in MODULES
                        and k.endswith(f"({mode})"))
            floor = start[f"{FLOORS[mode]} ({mode})"][1]
            lines.append(f"\nGoal ({mode}): at most {GOALS['startup']} s: worst CPU {worst:.3f} s "
                         f"({'met' if worst <= GOALS['startup'] else 'NOT met'}); the floor ({FLOORS[mode]}) "
                         f"alone takes {floor:.3f} s.")
        lines.append("")
    rows = []
    if "W4" in figures:
        w4 = figures["W4"]
        ratio = med(w4["ours"]) / med(w4["skopeo"])
        rows.append(f"| W4 no-op re-copy | {med(w4['ours']):.3f} | {med(w4['skopeo']):.3f} | {ratio:.2f}× | "
                    f"≤ {GOALS['W4']:g}× ({'met' if ratio <= GOALS['W4'] else 'NOT met'}) | "
                    f"{cpu_ratio(w4['ours cpu'], w4['skopeo cpu'])} | {max(w4['requests'])} requests |")
    if "W5" in figures:
        w5 = figures["W5"]
        ratio = med(w5["ours"]) / med(w5["skopeo"])
        rows.append(f"| W5 resolve {figures['tags']} tags | {med(w5['ours']):.3f} (in-process "
                    f"{med(w5['ours in-process']):.3f}) | {med(w5['skopeo']):.3f} | {ratio:.3f}× | "
                    f"≤ {GOALS['W5']:g}× ({'met' if ratio <= GOALS['W5'] else 'NOT met'}) | "
                    f"{cpu_ratio(w5['ours cpu'], w5['skopeo cpu'])} | |")
    if "plan" in figures:
        plan = figures["plan"]
        skopeo_all = med(plan["skopeo per tag"]) * figures["plan_tags"]
        ratio = med(plan["ours"]) / skopeo_all
        rows.append(f"| prune plan, {figures['plan_tags']} tags | {med(plan['ours']):.3f} | {skopeo_all:.1f} "
                    f"({plan['sample']} tags timed, scaled) | {ratio:.3f}× | ≤ {GOALS['plan']:g}× "
                    f"({'met' if ratio <= GOALS['plan'] else 'NOT met'}) | "
                    f"{cpu_ratio(plan['ours cpu'], [c * figures['plan_tags'] for c in plan['skopeo cpu per tag']])} | "
                    f"{max(plan['requests'])} requests, registry CPU {med(plan['registry cpu']):.2f} s; both "
                    f"processes' CPU over {os.cpu_count()} cores: {plan_cpu_floor(plan):.2f} s |")
    if "W1" in figures:
        w1 = figures["W1"]
        ratio = med(w1["ours"]) / med(w1["skopeo"])
        rss = max(w1["ours rss"])
        rows.append(f"| W1 4 × {figures['layer_mib']} MiB across registries | {med(w1['ours']):.3f} | "
                    f"{med(w1['skopeo']):.3f} | {ratio:.2f}× | ≤ {GOALS['W1']:g}× "
                    f"({'met' if ratio <= GOALS['W1'] else 'NOT met'}) | | peak RSS {rss:.1f} MiB (≤ "
                    f"{GOALS['rss_mib']:g}: {'met' if rss <= GOALS['rss_mib'] else 'NOT met'}) |")
    if rows:
        lines += ["Workloads (wall s, median; one process per run):", "",
                  "| workload | ours s | skopeo s | ours / skopeo | goal | CPU s ours / skopeo (ratio) | |",
                  "|---|---:|---:|---:|---|---|---|", *rows, ""]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run (default all)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per part (default 3)")
    parser.add_argument("--count", type=int, default=300, help="cpu: requests per client, operation and round")
    parser.add_argument("--tags", type=int, default=500, help="W5 tags (default 500)")
    parser.add_argument("--plan-tags", type=int, default=2000, help="plan: tags (default 2000, over 0.8 × digests)")
    parser.add_argument("--sample", type=int, default=100, help="plan: tags in the skopeo loop (default 100)")
    parser.add_argument("--layer-mib", type=int, default=64, help="W1 layer size in MiB (default 64)")
    parser.add_argument("--profile", action="store_true",
                        help="also print cProfile of Repository's requests (cpu; plan with --timeline)")
    parser.add_argument("--timeline", action="store_true",
                        help="plan: one more run with a timeline of its phases and both processes' CPU "
                             "(with --profile, a cProfile of every thread of it)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    collections_path()
    load_before = os.getloadavg()
    figures: dict[str, Any] = {"tags": args.tags, "plan_tags": args.plan_tags, "layer_mib": args.layer_mib}
    workdir = Path(tempfile.mkdtemp(prefix="ocireg-lean-"))
    source = base.registry()
    try:
        seeder = Seeder(source.url)
        config, manifest = seeder.image("lean/app", 0)
        seeder.push_blob("lean/app", seeder.layer)
        seeder.push_blob("lean/app", config)
        for i in range(20):  # one tag-list page of 20 names
            seeder.put_manifest("lean/app", f"t{i}", manifest)
        if "cpu" in args.only:
            log("cpu: client CPU per request")
            figures["cpu"] = bench_cpu(source.host, "lean/app", "t0", args.count, args.rounds)
            if args.profile:
                print(profile_cpu(source.host, "lean/app", "t0", args.count))
        if "startup" in args.only:
            log("startup: spawn to first connect")
            figures["startup"] = bench_startup(source.host, workdir, max(args.rounds, 5))
            figures["importtime"] = {m: import_times(m, workdir) for m in MODULES}
        if "W4" in args.only or "W1" in args.only:
            log("W1 / W4: seeding the W1 image")
            figures["W1"] = bench_w1(source, args.rounds, args.layer_mib, workdir) if "W1" in args.only else None
            if figures["W1"] is None:
                del figures["W1"]
                base.seed(source.url, "w1/app", base.make_image(workdir, "w1", [args.layer_mib * base.MiB] * 4), "v1")
            if "W4" in args.only:
                log("W4: no-op re-copy")
                with base.Fresh() as dest:
                    figures["W4"] = bench_w4(source, dest, workdir, args.rounds)
        if "W5" in args.only:
            log(f"W5: resolve {args.tags} tags")
            seeder.push_blob("w5/app", seeder.layer)
            seeder.push_blob("w5/app", config)
            for i in range(args.tags):
                seeder.put_manifest("w5/app", f"t{i}", manifest)
            figures["W5"] = bench_w5(source, [f"t{i}" for i in range(args.tags)], args.rounds)
        if "plan" in args.only:
            log(f"plan: seeding {args.plan_tags} tags")
            with ThreadPoolExecutor(16) as pool:
                tags = seeder.seed("plan/app", args.plan_tags, args.plan_tags * 4 // 5, pool)
            figures["plan"] = bench_plan(source, tags, workdir, args.rounds, args.sample, args.timeline,
                                         args.profile)
    finally:
        source.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    text = report(figures, argv, (load_before, os.getloadavg()))
    print(text)
    if "timeline" in figures.get("plan", {}):
        print(timeline_text(figures["plan"]["timeline"]))
    if "importtime" in figures:
        for module, rows in figures["importtime"].items():
            print(f"{module} imports (cumulative s): " + ", ".join(f"{n} {t:.3f}" for n, t in rows[:8]))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
