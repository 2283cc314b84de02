"""Measure the race windows that remain, statistically: the scenarios of tests/integration/test_races.py, many trials.

The tests force each interleaving once and assert its exact outcome; how *often* a real pusher
lands in a window is a measurement, and depends on the machine's load, so it lives here:

    .venv/bin/python bench/races.py                        # 36 raw-push trials, 12 cooperating
    .venv/bin/python bench/races.py --trials 100           # tighter figures

It starts one local Distribution (tests/rig), runs the prune-versus-push scenarios (raw pushers that
know nothing of the lease, and this collection's writers with the opt-in lease) and prints the
harness's summary line for each: pushes, lost images, deletions, skips. docs/guide_parallel.md
("Measured windows") quotes these lines.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import conftest  # noqa: E402,F401  # pylint: disable=unused-import,wrong-import-position  # the collection on sys.path

from tests.integration.test_races import prune_scenario  # noqa: E402  # pylint: disable=wrong-import-position
from tests.rig.flavours import RigRegistry  # noqa: E402  # pylint: disable=wrong-import-position


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=36, help="trials per scenario (default 36)")
    parser.add_argument("--only", choices=("raw", "cooperating"), default=None, help="one scenario only")
    options = parser.parse_args(argv)
    with RigRegistry() as registry:
        if options.only in (None, "raw"):
            print(prune_scenario(registry, "prune-vs-raw-push", cooperating=False, trials=options.trials).line(),
                  flush=True)
        if options.only in (None, "cooperating"):
            print(prune_scenario(registry, "prune-vs-cooperating-push", cooperating=True,
                                 trials=max(1, options.trials // 3)).line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
