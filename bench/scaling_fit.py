"""Benchmark the Chinchilla approach-3 fit: the batched fitter against a plain scipy loop, same data.

The data are Epoch AI's points extracted from Hoffmann et al.'s figure (Besiroglu et al. 2024,
"Chinchilla Scaling: A replication attempt"): a CSV with columns `Model Size` (N), `Training FLOP`
(C; D = C / 6N) and `loss`. As Epoch do, the 5 highest-loss rows are left out (240 of 245 remain).
The data are not part of this repository: pass the CSV with --data, or let the bench read it from a
local mirror of their repository (MIRROR below) if there is one.

Both fits minimize the same objective (Huber δ = 1e-3 on log loss, θ in the law's bounds) from
Hoffmann's full grid of 4,500 starts, then refit 100 bootstrap resamples from the best few optima:
- fast: scalelab.orchestrator.scaling.fit.fit_law (batched L-BFGS, scipy polish; it also runs the backtest);
- scipy: one scipy.optimize.minimize(L-BFGS-B) per start and per resample start, as the fitter
  did before it was batched.
It prints wall and CPU seconds of each, the ratio, and the constants with their intervals.

    python bench/scaling_fit.py [--data PATH] [--bootstrap 100] [--skip-scipy]
"""

from __future__ import annotations

import os
import sys

# bench/tokenize.py would shadow the standard library's tokenize module: keep bench/ off the path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow.csv as pcsv  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from scalelab.orchestrator.scaling.fit import fit_law  # noqa: E402
from scalelab.orchestrator.scaling.laws import CHINCHILLA  # noqa: E402
from scalelab.orchestrator.scaling.objective import HuberObjective  # noqa: E402
from scalelab.orchestrator.scaling.points import Points  # noqa: E402

MIRROR = Path("/work/.mirror/epoch-research+analyzing-chinchilla/repo")
MIRROR_FILE = "data/svg_extracted_data.csv"
KEEP_STARTS = 5


def epoch_points(path: Path) -> Points:
    table = pcsv.read_csv(path)
    n = table["Model Size"].to_numpy().astype(float)
    flops = table["Training FLOP"].to_numpy().astype(float)
    loss = table["loss"].to_numpy().astype(float)
    keep = loss < np.sort(loss)[-5]  # Epoch leave out the 5 highest losses
    n, d, loss = n[keep], flops[keep] / (6 * n[keep]), loss[keep]
    return Points(n, d, loss, np.ones_like(n), [str(i) for i in np.flatnonzero(keep)], str(path), "as given")


def data_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if not MIRROR.is_dir():
        sys.exit(f"no --data given and no mirror at {MIRROR}: pass Epoch AI's svg_extracted_data.csv with --data")
    text = subprocess.run(["git", "-C", str(MIRROR), "show", f"HEAD:{MIRROR_FILE}"], check=True,
                          capture_output=True).stdout
    tmp = Path(tempfile.mkdtemp()) / "svg_extracted_data.csv"
    tmp.write_bytes(text)
    return tmp


def scipy_fit(points: Points, starts: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(objective, θ, start) from every start, best first: one scipy L-BFGS-B call per start."""
    objective = HuberObjective(CHINCHILLA, points)
    bounds = [(None if np.isinf(lo) else lo, None if np.isinf(hi) else hi) for lo, hi in zip(*CHINCHILLA.bounds(points))]
    found = []
    for start in starts:
        res = minimize(objective.one, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000})
        if np.isfinite(res.fun) and np.all(np.isfinite(res.x)):
            found.append((float(res.fun), res.x, start))
    return sorted(found, key=lambda f: f[0])


def scipy_loop(points: Points, bootstrap: int, seed: int = 0) -> tuple[dict, list[dict]]:
    found = scipy_fit(points, np.array(CHINCHILLA.grid, dtype=float))
    best = found[0][1]
    starts = np.array([best] + [f[2] for f in found[:KEEP_STARTS]])
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        idx = rng.integers(0, len(points), len(points))
        sample = Points(points.params[idx], points.tokens[idx], points.loss[idx], points.epochs[idx],
                        [points.labels[i] for i in idx], points.source, points.n_kind)
        refit = scipy_fit(sample, starts)
        if refit:
            samples.append(CHINCHILLA.constants(refit[0][1]))
    return CHINCHILLA.constants(best), samples


def interval(samples: list[dict], key: str) -> str:
    lo, hi = np.percentile([s[key] for s in samples], [2.5, 97.5])
    return f"[{lo:.4g}, {hi:.4g}]"


def show(name: str, wall: float, cpu: float, constants: dict, samples: list[dict]) -> None:
    print(f"{name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {len(samples)} bootstrap fits")
    for key in ("E", "A", "B", "alpha", "beta"):
        print(f"  {key:>5} = {constants[key]:.6g}  95% {interval(samples, key)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="Epoch AI's svg_extracted_data.csv (default: from the local mirror)")
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--skip-scipy", action="store_true", help="time only the fast fitter")
    args = ap.parse_args()
    points = epoch_points(data_path(args.data))
    print(f"{len(points)} points; grid of {len(CHINCHILLA.grid)} starts; {args.bootstrap} bootstrap resamples")

    wall, cpu = time.perf_counter(), time.process_time()
    fast = fit_law(CHINCHILLA, points, bootstrap=args.bootstrap)
    fast_wall, fast_cpu = time.perf_counter() - wall, time.process_time() - cpu
    show("fast (batched, with backtest)", fast_wall, fast_cpu, fast.constants, fast.samples)
    if fast.backtest:
        bt = fast.backtest.to_json()
        print(f"  backtest: {bt['rule']}: relative error max {bt['max_rel_error']:.2%}, "
              f"mean {bt['mean_rel_error']:.2%}")
    if args.skip_scipy:
        return
    wall, cpu = time.perf_counter(), time.process_time()
    constants, samples = scipy_loop(points, args.bootstrap)
    loop_wall, loop_cpu = time.perf_counter() - wall, time.process_time() - cpu
    show("scipy loop", loop_wall, loop_cpu, constants, samples)
    print(f"speed-up: {loop_wall / fast_wall:.1f}x wall, {loop_cpu / fast_cpu:.1f}x CPU")
    diffs = {k: abs(fast.constants[k] - constants[k]) / abs(constants[k]) for k in constants}
    print("largest relative difference in a constant: " + max((f"{v:.1e} ({k})" for k, v in diffs.items()),
                                                              key=lambda s: float(s.split()[0])))


if __name__ == "__main__":
    main()
