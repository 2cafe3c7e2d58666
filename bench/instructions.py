"""Instructions per lifecycle in the app's process, counted by valgrind, so that a change's
cost shows on a noisy machine.

    .venv/bin/python -m bench.instructions [--n 5] [--warmup 2] [--tree DIR] [--env NAME=VALUE]

Runs ``bench.profile`` (the real app and PostgreSQL, every step in-process) twice under
``valgrind --tool=callgrind``, with ``--warmup`` + 3 and ``--warmup`` + 3 + ``--n`` lifecycles,
and prints the difference per lifecycle: start-up, imports and the peers' floor are in both
runs and cancel. Instructions, not seconds: the same code and inputs give the same count to
within about 0.2 % whatever else the machine is doing, where CPU time and throughput here
spread by 10-15 % (docs/benchmarks.md, session 10). ``--tree`` counts another checkout
(its own ``.venv``), e.g. a release's worktree; ``--env`` passes settings such as
``GIGCO_RATE_LIMIT_REQUESTS=off``. Not counted: PostgreSQL's and Redis's own work
(``bench.profile`` prints PostgreSQL's CPU). About 25x slower than the plain run: n=5 takes
some five minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
BASE_N = 3
_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(tree: Path, n: int, warmup: int, env: dict[str, str]) -> int:
    """Guest instructions of one ``bench.profile`` run of ``n`` lifecycles in ``tree``."""
    python = tree / ".venv" / "bin" / "python"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        str(python),
        "-m",
        "bench.profile",
        "--n",
        str(n),
        "--warmup",
        str(warmup),
    ]
    run_env = {**os.environ, "PYTHONHASHSEED": "0", **env}
    done = subprocess.run(command, cwd=tree, env=run_env, capture_output=True, text=True)
    found = _COLLECTED.findall(done.stderr)
    if done.returncode != 0 or not found:
        sys.exit(f"bench.profile under valgrind failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    return int(found[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=5, help="lifecycles the second run adds")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--tree", type=Path, default=HERE, help="the checkout to count")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    a = ap.parse_args()
    env = dict(item.split("=", 1) for item in a.env)
    small = instructions(a.tree, BASE_N, a.warmup, env)
    large = instructions(a.tree, BASE_N + a.n, a.warmup, env)
    per = (large - small) / a.n
    print(f"{a.tree} {' '.join(a.env)}".rstrip())
    print(f"instructions per lifecycle: {per / 1e6:.1f} M ({small} and {large} in all)")


if __name__ == "__main__":
    main()
