"""A default shapes run beside busy neighbour processes: how much slower than on a quiet CPU?

For each thread policy, a child process warms up once and then times ``--repeats`` default runs
of the shapes backbone (guided, the app's defaults), first quiet, then beside 1 and 2 processes
that spin on a core each (the "busy neighbour"). Prints each median and its ratio to the quiet
median of the same policy. Policies: ``auto`` (starvid/threads.py: the cores other work leaves
free when the run starts), ``one-thread``, ``torch`` (torch's own default, the behaviour before
the thread choice existed: a thread per core, spinning waits) and ``all-passive`` (a thread per
core, sleeping waits).

    python benchmarks/busy_cpu.py [--repeats 5] [--neighbours 0 1 2] [--json]

Target (issue 18): auto within 2x its quiet time beside one neighbour, within 4x beside two.
Run it on an otherwise quiet machine: other load counts as neighbours too.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "two red circles moving left and a blue square jumping"
POLICIES = {
    "auto": {},
    "one-thread": {"STARVID_THREADS": "1"},
    "torch": {"STARVID_THREADS": str(os.cpu_count() or 1)},
    "all-passive": {"STARVID_THREADS": str(os.cpu_count() or 1), "OMP_WAIT_POLICY": "PASSIVE"},
}

CHILD = """
import json, statistics, sys, time
from starvid.backbones import load_backbone
from starvid.parsing import parse_prompt
from starvid.run import execute, prepare_run
from starvid.settings import GenerationSettings
bb = load_backbone("shapes", device="cpu")
request = prepare_run(parse_prompt(sys.argv[1]), bb, "shapes", GenerationSettings())
execute(request, bb)  # warm-up
times = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    execute(request, bb)
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def _spin(stop) -> None:
    while not stop.is_set():
        for _ in range(100_000):
            pass


def time_runs(policy: str, neighbours: int, repeats: int) -> list[float]:
    """Wall times of ``repeats`` default runs in a fresh child beside ``neighbours`` spinners."""
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(neighbours)]
    for p in spinners:
        p.start()
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        env.pop("STARVID_THREADS", None)
        env.pop("OMP_WAIT_POLICY", None)
        env.update(POLICIES[policy])
        done = subprocess.run(
            [sys.executable, "-c", CHILD, PROMPT, str(repeats)],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(ROOT),
            timeout=3600,
        )
        if done.returncode != 0:
            raise SystemExit(f"child failed: {done.stderr.strip().splitlines()[-1:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        stop.set()
        for p in spinners:
            p.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    """Entry point: prints a table (or JSON) of medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--neighbours", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--policies", nargs="+", choices=list(POLICIES), default=["auto", "torch"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for policy in args.policies:
        quiet = None
        for n in sorted(set([0, *args.neighbours])):
            t0 = time.time()
            times = time_runs(policy, n, args.repeats)
            med = statistics.median(times)
            quiet = med if n == 0 else quiet
            rows.append(
                {
                    "policy": policy,
                    "neighbours": n,
                    "median_s": round(med, 3),
                    "ratio_to_quiet": round(med / quiet, 2),
                    "wall_s": round(time.time() - t0, 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"default shapes run, {os.cpu_count()} cores, median of {args.repeats}")
    print(f"{'policy':<8} {'neighbours':>10} {'median s':>9} {'x quiet':>8}")
    for r in rows:
        print(
            f"{r['policy']:<8} {r['neighbours']:>10} {r['median_s']:>9.3f} "
            f"{r['ratio_to_quiet']:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
