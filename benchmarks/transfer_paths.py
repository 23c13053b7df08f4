"""fit_transfer against a baseline checkout's, in the same run, on the bundled transfer data: warm in-process fits
(median of 5 after one that compiles or loads the model) and fresh ``bayes-scaling fit`` processes (warm caches),
alternating between the two so that both see the same machine load; ratios new / baseline.

    python benchmarks/transfer_paths.py --baseline /path/to/other/checkout/.venv/bin/python
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DRIVER = """
import time, warnings, numpy as np
warnings.simplefilter("ignore")
import bayes_scaling as bs
from bayes_scaling.inference import sampling
fit_transfer = getattr(sampling, "_fit_transfer", None) or sampling.fit_transfer
data = bs.load_example()
fit_transfer(data, seed=1, progressbar=False, warn=False)
times = []
for seed in range(2, 7):
    t0 = time.perf_counter()
    fit = fit_transfer(data, seed=seed, progressbar=False, warn=False)
    times.append(time.perf_counter() - t0)
d = fit.diagnostics
print(float(np.median(times)), d.ess_bulk_min, d.divergences)
"""


def warm(python: str, cwd: str) -> tuple[float, float, int]:
    # cwd outside both checkouts: ``python -c`` would import the package from the current folder first
    out = subprocess.run([python, "-c", DRIVER], capture_output=True, text=True, check=True, cwd=cwd).stdout.split()
    return float(out[-3]), float(out[-2]), int(out[-1])


def fresh(python: str, csv: str, out: str) -> float:
    cli = str(Path(python).with_name("bayes-scaling"))
    t0 = time.perf_counter()
    subprocess.run([cli, "fit", csv, "--out", out, "--quiet"], capture_output=True, check=True,
                   cwd=str(Path(out).parent))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--baseline", required=True, help="the baseline checkout's Python (its .venv/bin/python)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    from bayes_scaling.data.datasets import EXAMPLE_CSV

    pythons = {"baseline": args.baseline, "new": sys.executable}
    rows: dict[str, dict[str, list]] = {k: {"warm": [], "fresh": []} for k in pythons}
    with tempfile.TemporaryDirectory() as tmp:
        for name, py in pythons.items():       # warm the caches of both
            fresh(py, str(EXAMPLE_CSV), f"{tmp}/{name}.nc")
        for _ in range(args.rounds):
            for name, py in pythons.items():
                rows[name]["warm"].append(warm(py, tmp))
                rows[name]["fresh"].append(fresh(py, str(EXAMPLE_CSV), f"{tmp}/{name}.nc"))
    for name, r in rows.items():
        w = [t for t, _, _ in r["warm"]]
        print(f"{name}: warm in-process median {statistics.median(w):.2f} s (rounds {', '.join(f'{t:.2f}' for t in w)}; "
              f"min bulk ESS {', '.join(f'{e:.0f}' for _, e, _ in r['warm'])}; divergences "
              f"{', '.join(str(d) for _, _, d in r['warm'])}); fresh process {', '.join(f'{t:.2f}' for t in r['fresh'])} s")
    for kind in ("warm", "fresh"):
        new = statistics.median([x[0] if kind == "warm" else x for x in rows["new"][kind]])
        base = statistics.median([x[0] if kind == "warm" else x for x in rows["baseline"][kind]])
        print(f"ratio new / baseline, {kind}: {new / base:.2f}")


if __name__ == "__main__":
    main()
