"""How long the command line takes to answer when it has no work to do — ``--help``,
``--version``, a refused option — against the imports every training command pays, measured
in the same invocation.

    python benchmarks/cli_startup.py --repeats 5

Each command runs in a fresh interpreter, as a user's does; the median wall time of the
repeats is printed as a Markdown table. Exits 1 if a command ends with another status than
the one it should (0 for help and version, 2 for the refused option).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CLI = [sys.executable, "-m", "diffaug_bio"]
RUNS: dict[str, tuple[list[str], int]] = {
    "python -c pass (the interpreter alone)": ([sys.executable, "-c", "pass"], 0),
    "diffaug-bio --help": ([*CLI, "--help"], 0),
    "diffaug-bio --version": ([*CLI, "--version"], 0),
    "diffaug-bio embed --help": ([*CLI, "embed", "--help"], 0),
    "diffaug-bio train-dna --help": ([*CLI, "train-dna", "--help"], 0),
    "diffaug-bio embed cells.h5ad --method nope (refused)": (
        [*CLI, "embed", "cells.h5ad", "--method", "nope"],
        2,
    ),
    "python -c 'import diffaug_bio.tl' (what a training command loads)": (
        [sys.executable, "-c", "import diffaug_bio.tl"],
        0,
    ),
}


def timed(command: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    status = subprocess.run(command, capture_output=True).returncode
    return time.perf_counter() - start, status


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    print("| command | median s | status |")
    print("|---|---|---|")
    wrong = []
    for name, (command, expected) in RUNS.items():
        runs = [timed(command) for _ in range(args.repeats)]
        statuses = {status for _, status in runs}
        if statuses != {expected}:
            wrong.append(f"{name}: exit status {sorted(statuses)}, expected {expected}")
        median = statistics.median(seconds for seconds, _ in runs)
        print(f"| {name} | {median:.2f} | {'/'.join(map(str, sorted(statuses)))} |")
    for line in wrong:
        print(line, file=sys.stderr)
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
