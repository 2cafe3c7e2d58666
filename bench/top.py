"""The top lines of a py-spy collapsed-stack profile: where the samples are, by own and total.

.venv/bin/python -m bench.top /tmp/prof/worker.txt [--n 25] [--match gigco]
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("profile", type=Path)
    ap.add_argument("--n", type=int, default=25)
    ap.add_argument("--match", default="", help="only frames whose text contains this")
    a = ap.parse_args()
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in a.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            if a.match in frame:
                total[frame] += n
    print(f"{samples} samples")
    print("-- by total (inclusive)")
    for frame, n in total.most_common(a.n):
        print(f"{100 * n / samples:5.1f}%  {frame}")
    print("-- by own")
    for frame, n in own.most_common(a.n):
        print(f"{100 * n / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
