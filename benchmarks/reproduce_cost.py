"""What `lrlab reproduce` cost: per claim of an output folder, its wall time (claims.json), the
runs it trained, their steps and the sum of their training seconds (each run's record.json), and
the training speed in steps per second per run. Run it on the folder a reproduce wrote:

    python benchmarks/reproduce_cost.py claims

The machine's load during the run is not in these files: note `uptime` beside the figures (on a
machine shared with other work, runs are several times slower than on a quiet one).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lrlab.reproduce.claim import own_seconds


def _records(out: Path) -> dict[str, dict]:
    """Every run record under `out` (shared runs and each claim's own), by folder."""
    return {
        str(path.parent.relative_to(out)): json.loads(path.read_text())
        for path in sorted(out.glob("**/runs/*/record.json"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a folder `lrlab reproduce` wrote")
    out = parser.parse_args().out
    claims = json.loads((out / "claims.json").read_text())["claims"]
    records = _records(out)
    # A branch's record counts its parent's steps and seconds up to the branch point: only its own.
    steps = sum(r["steps_done"] - (r.get("branch_step") or 0) for r in records.values())
    seconds = sum(own_seconds(record) for record in records.values())
    print(f"{'claim':<22} {'verdict':<14} {'wall s':>8} {'trained':>8} {'reused':>7}")
    for claim in claims:
        print(
            f"{claim['name']:<22} {claim['verdict']:<14} {claim['seconds']:>8.0f} "
            f"{claim['runs_trained']:>8} {claim['runs_reused']:>7}"
        )
    wall = sum(claim["seconds"] for claim in claims)
    print(f"wall time of the claims: {wall:.0f} s ({wall / 60:.1f} min)")
    print(
        f"{len(records)} runs, {steps} steps; sum of their training seconds {seconds:.0f} s "
        f"({steps / max(seconds, 1e-9):.1f} steps/s per run)"
    )


if __name__ == "__main__":
    main()
