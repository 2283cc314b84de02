"""A race harness: start N operations at the same moment, many times, and judge what each reported.

A *scenario* is three callables:

``setup(trial) -> state``
    Prepares a fresh registry state for one trial (usually its own repository, so trials never
    share tags) and returns whatever the racers and the judge need.
``racers(state) -> [(name, callable)]``
    The operations to race. Each runs in its own thread; they are released together by a
    barrier. A racer's return value is its *report*; an exception is a report too
    (``Outcome.error``). Where the racers must meet in a given order, the racers themselves wait
    on events (the tests force every interleaving they check that way); ``stagger`` (bench/races.py
    only) spreads the starts by a seeded random delay instead, to measure how often a window is hit.
``judge(state, outcomes) -> Verdict``
    Reads what the registry holds afterwards and says which reports disagree with it, in words.

:func:`run_scenario` repeats a scenario for a bounded number of trials and returns a
:class:`ScenarioSummary` whose :meth:`~ScenarioSummary.line` is the one-line summary the tests
print (``race[NAME]: T trials, D with a report that disagrees with the registry, ...``).

The tests use :func:`race` with racers that order themselves; the statistical runs of
:func:`run_scenario` are measurements and live in bench/races.py.

Racers can be threads calling the ``_ops`` functions directly (fast: many trials per second) or
threads that each run a real ``ansible-playbook`` through :class:`tests.rig.playbook.PlaybookRunner`
(real processes, so no shared interpreter lock between the racers; a few trials only).
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    """What one racer reported: its return value, or the exception it raised, and when it ran."""

    name: str
    value: Any = None
    error: BaseException | None = None
    delay: float = 0.0
    started: float = 0.0
    finished: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the racer reported success (returned instead of raising)."""
        return self.error is None


@dataclass
class Verdict:
    """The judge's reading of one trial: disagreements in words, plus named counters."""

    disagreements: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class TrialRecord:
    """One trial: what every racer reported and what the judge found."""

    index: int
    outcomes: list[Outcome]
    verdict: Verdict


@dataclass
class ScenarioSummary:
    """Every trial of a scenario and the totals the tests assert on."""

    name: str
    trials: list[TrialRecord] = field(default_factory=list)
    seconds: float = 0.0
    #: Where the time went: setup, race and judge seconds summed over the trials.
    phases: dict[str, float] = field(default_factory=lambda: {"setup": 0.0, "race": 0.0, "judge": 0.0})

    @property
    def disagreeing_trials(self) -> int:
        """Trials where at least one racer's report disagrees with the final registry state."""
        return sum(1 for t in self.trials if t.verdict.disagreements)

    def count(self, key: str) -> int:
        """A judge counter summed over the trials (trials that did not set it count 0)."""
        return sum(t.verdict.counts.get(key, 0) for t in self.trials)

    def keys(self) -> list[str]:
        """Every counter name a judge set, in first-seen order."""
        seen: dict[str, None] = {}
        for trial in self.trials:
            seen.update(dict.fromkeys(trial.verdict.counts))
        return list(seen)

    def line(self) -> str:
        """The summary line: trials, disagreeing trials, then every counter."""
        counters = ", ".join(f"{key}={self.count(key)}" for key in self.keys())
        return (f"race[{self.name}]: {len(self.trials)} trials, {self.disagreeing_trials} with a report that "
                f"disagrees with the registry; {counters} ({self.seconds:.1f}s: "
                + ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in self.phases.items()) + ")")

    def explain(self) -> str:
        """Every disagreement with its trial and the racers' reports, for assertion messages."""
        lines = [self.line()]
        for trial in self.trials:
            for text in trial.verdict.disagreements:
                lines.append(f"  trial {trial.index}: {text}")
                for outcome in trial.outcomes:
                    error = outcome.error
                    cause = getattr(error, "cause", None)
                    shown = (f"error {type(error).__name__}{f' (cause {type(cause).__name__})' if cause else ''}: "
                             f"{error}" if error is not None else f"ok {outcome.value!r}")
                    lines.append(f"    {outcome.name} (+{outcome.delay * 1000:.1f} ms): {shown[:300]}")
        return "\n".join(lines)


Racer = tuple[str, Callable[[], Any]]


def race(racers: Sequence[Racer], *, stagger: Callable[[Outcome], None] | None = None,
         delays: Sequence[float] = ()) -> list[Outcome]:
    """Run the racers in threads released together by a barrier; wait for all, return their reports.

    ``stagger(outcome)``, when given, runs in the racer's thread right after the release and before
    its call (bench/races.py sleeps ``outcome.delay``, taken from ``delays``, there); the tests give none.
    """
    outcomes = [Outcome(name, delay=delays[i] if i < len(delays) else 0.0) for i, (name, _call) in enumerate(racers)]
    barrier = threading.Barrier(len(racers))

    def run(outcome: Outcome, call: Callable[[], Any]) -> None:
        barrier.wait()
        if stagger is not None:
            stagger(outcome)
        outcome.started = time.monotonic()
        try:
            outcome.value = call()
        except BaseException as exc:  # noqa: BLE001 - every failure is a report to judge
            outcome.error = exc
        outcome.finished = time.monotonic()

    threads = [threading.Thread(target=run, args=(outcome, call), daemon=True)
               for outcome, (_name, call) in zip(outcomes, racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    stuck = [outcome.name for outcome, thread in zip(outcomes, threads) if thread.is_alive()]
    if stuck:
        raise RuntimeError(f"racers still running after 600 s: {', '.join(stuck)}")
    return outcomes


def run_scenario(name: str, *, trials: int, setup: Callable[[int], Any],
                 racers: Callable[[Any], Sequence[Racer]], judge: Callable[[Any, list[Outcome]], Verdict],
                 jitter: float = 0.0, seed: int = 20,
                 stagger: Callable[[Outcome], None] | None = None) -> ScenarioSummary:
    """Run ``trials`` trials of a scenario (see the module docstring) and return the summary.

    ``jitter`` > 0 draws each racer's ``Outcome.delay`` in ``[0, jitter)`` from a generator seeded
    with ``name`` and ``seed`` (so a run can be repeated); ``stagger`` decides what to do with it
    (bench/races.py waits that long). The summary's counts are then a measurement, not a test.
    """
    rng = random.Random(f"{name}:{seed}")
    summary = ScenarioSummary(name)
    started = time.monotonic()
    for index in range(trials):
        clock = time.monotonic()
        state = setup(index)
        summary.phases["setup"] += time.monotonic() - clock
        clock = time.monotonic()
        chosen = racers(state)
        delays = [rng.uniform(0, jitter) for _racer in chosen] if jitter > 0 else []
        outcomes = race(chosen, stagger=stagger, delays=delays)
        summary.phases["race"] += time.monotonic() - clock
        clock = time.monotonic()
        verdict = judge(state, outcomes)
        summary.phases["judge"] += time.monotonic() - clock
        summary.trials.append(TrialRecord(index, outcomes, verdict))
    summary.seconds = time.monotonic() - started
    return summary
