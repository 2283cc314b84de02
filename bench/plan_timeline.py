"""Run ``registry_prune`` directly with a timeline of its phases (for bench/lean.py ``--timeline``).

    python bench/plan_timeline.py OUT_JSON REGISTRY_PID MODULE ARGS_FILE [PROFILE_OUT]

Runs ``MODULE`` as ``__main__`` with ``ARGS_FILE`` (as bench/lean.py's ``run_module`` does) and
writes to ``OUT_JSON``:

* ``phases``: each retention phase as ``[name, start s, end s, process CPU s at start, at end]``
  (seconds from this process's start, as the kernel counts it), from wrappers put around the
  functions that make up a run (the tag list, the per-tag GETs, the per-digest GETs, the referrers,
  the config GETs, the plan, check mode's apply walk, the result's shaping, ``exit_json``);
* ``samples``: every 50 ms ``[s, this process's CPU s, the registry process's CPU s, requests in
  flight]``, CPU read from ``/proc/<pid>/stat`` (user + system; the kernel counts in ticks);
* ``requests``: how many requests the transport sent.

With ``PROFILE_OUT``, a ``cProfile`` of every thread (the reader threads too, which ``python -m
cProfile`` leaves out), timed by each thread's own CPU (``time.thread_time``), merged and written
there for :mod:`pstats`.

The wrappers and the sampler cost a little CPU of their own; use the timeline for where the time
goes, the plain run for how long it takes.
"""
from __future__ import annotations

import cProfile
import functools
import json
import os
import runpy
import sys
import threading
import time
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int | str) -> tuple[float, float]:
    """``(user + system CPU s, start time s since boot)`` of process ``pid``."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK, int(fields[19]) / _TICK


def uptime() -> float:
    with open("/proc/uptime", encoding="ascii") as up:
        return float(up.read().split()[0])


def main() -> None:
    out_path, registry_pid, module, args_file = sys.argv[1:5]
    profile_out = sys.argv[5] if len(sys.argv) > 5 else None
    _cpu, started_at = cpu_of("self")
    origin = time.perf_counter() - (uptime() - started_at)  # perf_counter at this process's start

    def now() -> float:
        return time.perf_counter() - origin

    phases: list[list[Any]] = []
    samples: list[list[float]] = []
    state = {"inflight": 0, "requests": 0}
    lock = threading.Lock()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            samples.append([now(), time.process_time(), cpu_of(registry_pid)[0], state["inflight"]])

    def timed(name: str, function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            row = [name, now(), None, time.process_time(), None]
            phases.append(row)
            try:
                return function(*args, **kwargs)
            finally:
                row[2], row[4] = now(), time.process_time()
        return wrapper

    def counted(function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with lock:
                state["inflight"] += 1
                state["requests"] += 1
            try:
                return function(*args, **kwargs)
            finally:
                with lock:
                    state["inflight"] -= 1
        return wrapper

    phases.append(["start-up to first line of the wrapper", 0.0, now(), 0.0, time.process_time()])
    # pylint: disable=import-outside-toplevel
    from ansible.module_utils import basic

    from ansible_collections.ocireg.registry.plugins.module_utils._client.transport import core
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention import prune, snapshot
    phases.append(["imports (ansible basic, retention, transport)", phases[0][2], now(), phases[0][4],
                   time.process_time()])
    core.Transport._send = counted(core.Transport._send)  # type: ignore[method-assign]
    snapshot.image_tags = timed("tag list", snapshot.image_tags)
    reader = snapshot._Reader  # pylint: disable=protected-access
    reader.by_tags = timed("GET per tag", reader.by_tags)  # type: ignore[method-assign]
    reader.by_digests = timed("GET per digest not tagged", reader.by_digests)  # type: ignore[method-assign]
    reader.configs = timed("config GETs", reader.configs)  # type: ignore[method-assign]
    snapshot._referrers = timed("referrers", snapshot._referrers)  # pylint: disable=protected-access
    snapshot.collect_snapshot = timed("snapshot (all reads)", snapshot.collect_snapshot)
    prune.collect_snapshot = snapshot.collect_snapshot
    prune.select_repositories = timed("select repositories", prune.select_repositories)
    prune.plan_retention = timed("plan", prune.plan_retention)
    prune._apply_each = timed("apply walk", prune._apply_each)  # pylint: disable=protected-access
    prune.PruneResult.to_result = timed("result shaping", prune.PruneResult.to_result)  # type: ignore[method-assign]
    basic.AnsibleModule.exit_json = timed("exit_json", basic.AnsibleModule.exit_json)  # type: ignore[method-assign]
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    profiles: list[cProfile.Profile] = []
    if profile_out is not None:

        def profile_thread(*_args: Any) -> None:
            sys.setprofile(None)
            profiler = cProfile.Profile(time.thread_time)
            profiles.append(profiler)
            profiler.enable()

        threading.setprofile(profile_thread)
        profile_thread()
    sys.argv = [module, args_file]
    whole = ["module run (argument parsing to exit)", now(), None, time.process_time(), None]
    phases.append(whole)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        whole[2], whole[4] = now(), time.process_time()
        if profiles:
            import pstats  # pylint: disable=import-outside-toplevel
            profiles[0].disable()
            pstats.Stats(*profiles).dump_stats(profile_out)
        done.set()
        sampler.join()
        samples.append([now(), time.process_time(), cpu_of(registry_pid)[0], state["inflight"]])
        with open(out_path, "w", encoding="utf-8") as out:
            json.dump({"phases": phases, "samples": samples, "requests": state["requests"]}, out)


if __name__ == "__main__":
    main()
