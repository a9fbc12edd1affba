"""Null distributions of the KS statistic when parameters are fitted on the same data.

After fitting loc and scale, D no longer follows Kolmogorov's distribution: it is stochastically smaller,
so scipy's p-value is too large (Lilliefors 1967). For a location-scale family the null distribution of
D with fitted loc/scale depends only on n; with a fitted shape it also depends on the true shape. We
simulate it by parametric bootstrap — draw n values, refit every parameter, recompute D — once per
(family, n, replicates, shape grid point), and reuse it for every tensor:

* tables for the default sizes ship with the package (``weightstats/data/ks_null.npz``), made by
  ``python -m weightstats.fitting.nulltables``;
* any other size is simulated on first use and cached under ``$WEIGHTSTATS_CACHE`` (default
  ``~/.cache/weightstats``).

The tables use their own fixed seed, independent of the user's seed, so a table is a fixed reference.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .families import FAMILIES, Family
from .ks import ks_statistic_rows

LADDER = (500, 1000, 2000, 5000)
DEFAULT_REPLICATES = 1000
TABLE_SEED = 20261125
_CHUNK_VALUES = 2_000_000  # rows are simulated in chunks of about this many values (memory bound)


def _key(family: str, n: int, replicates: int, shape: float | None) -> str:
    shape_part = "none" if shape is None else f"{shape:.6g}"
    return f"{family}|n={n}|B={replicates}|shape={shape_part}"


def simulate_null(family: Family, n: int, replicates: int, shape: float | None) -> np.ndarray:
    """Sorted bootstrap replicates of D for ``family`` at sample size ``n`` (refit every replicate)."""
    key = _key(family.name, n, replicates, shape)
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng([TABLE_SEED, digest])
    rows_per_chunk = max(1, _CHUNK_VALUES // n)
    out = []
    for start in range(0, replicates, rows_per_chunk):
        rows = min(rows_per_chunk, replicates - start)
        x = np.sort(family.standard_rvs(rng, (rows, n), shape), axis=1)
        fit = family.fit_rows(x)
        cdf = family.cdf(x, fit.loc[:, None], fit.scale[:, None], fit.shape[:, None])
        out.append(ks_statistic_rows(x, cdf))
    return np.sort(np.concatenate(out))


# A null table is only valid for the fitting code that made it: bump this when a change to a family's
# fit moves D (2: gennorm's loc lands exactly on a data value below beta = 1), so that tables
# cached by an older version are simulated afresh. The shipped tables are regenerated with it.
NULL_TABLE_VERSION = 2


def _cache_dir() -> Path:
    root = Path(os.environ.get("WEIGHTSTATS_CACHE", Path.home() / ".cache" / "weightstats"))
    return root / f"ks-null-v{NULL_TABLE_VERSION}"


@lru_cache(maxsize=1)
def _shipped() -> dict[str, np.ndarray]:
    try:
        ref = resources.files("weightstats").joinpath("data/ks_null.npz")
        with resources.as_file(ref) as path, np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (FileNotFoundError, OSError, ValueError):
        return {}


@lru_cache(maxsize=512)
def null_distribution(family: str, n: int, replicates: int, shape: float | None) -> np.ndarray:
    """The sorted null replicates of D, from the shipped tables, the disk cache, or a fresh run."""
    key = _key(family, n, replicates, shape)
    shipped = _shipped()
    if key in shipped:
        return shipped[key]
    path = _cache_dir() / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".npy")
    try:
        return np.load(path)
    except (FileNotFoundError, OSError, ValueError):
        pass
    table = simulate_null(FAMILIES[family], n, replicates, shape)
    try:  # a cache we cannot write only costs time
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as tmp:
            np.save(tmp, table)
        os.replace(tmp.name, path)
    except OSError:
        pass
    return table


def _pvalue(table: np.ndarray, d: float) -> float:
    """Monte Carlo p-value (1 + #{D* >= d}) / (B + 1): never 0, exact in size for any B."""
    exceed = table.size - np.searchsorted(table, d, side="left")
    return float((1 + exceed) / (table.size + 1))


def bootstrap_pvalue(family: Family, n: int, d: float, shape: float, replicates: int) -> tuple[float, str]:
    """Valid KS p-value for D = ``d`` observed on ``n`` values with all parameters fitted.

    For shape families the p-value is interpolated (in log shape) between the two grid points that
    bracket the fitted shape; outside the grid the nearest end is used. Returns (p, note).
    """
    grid = family.shape_grid
    if grid is None:
        return _pvalue(null_distribution(family.name, n, replicates, None), d), ""
    g = np.asarray(grid)
    if not np.isfinite(shape):
        return float("nan"), "no shape estimate"
    if shape <= g[0] or shape >= g[-1]:
        end = float(g[0] if shape <= g[0] else g[-1])
        note = f"null table at {family.shape_name}={end:g} (fit outside table range)"
        return _pvalue(null_distribution(family.name, n, replicates, end), d), note
    hi = int(np.searchsorted(g, shape))
    lo = hi - 1
    p_lo = _pvalue(null_distribution(family.name, n, replicates, float(g[lo])), d)
    p_hi = _pvalue(null_distribution(family.name, n, replicates, float(g[hi])), d)
    w = (np.log(shape) - np.log(g[lo])) / (np.log(g[hi]) - np.log(g[lo]))
    return float((1 - w) * p_lo + w * p_hi), ""


def subsample_size(n: int, ks_sample: int) -> int:
    """Size of the subsample the valid p-value uses (a shipped size where possible)."""
    if n >= ks_sample:
        return ks_sample
    fitting = [m for m in LADDER if m <= n]
    return fitting[-1] if fitting else n


def main(argv: list[str] | None = None) -> None:
    """Regenerate the shipped tables: ``python -m weightstats.fitting.nulltables --out FILE``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "ks_null.npz"))
    parser.add_argument("--replicates", type=int, default=DEFAULT_REPLICATES)
    parser.add_argument("--sizes", default=",".join(map(str, LADDER)))
    args = parser.parse_args(argv)
    tables: dict[str, np.ndarray] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        for fam in FAMILIES.values():
            for shape in fam.shape_grid or (None,):
                t0 = time.perf_counter()
                key = _key(fam.name, n, args.replicates, shape)
                tables[key] = simulate_null(fam, n, args.replicates, shape).astype(np.float64)
                print(f"{key}: {time.perf_counter() - t0:.1f} s, median D {np.median(tables[key]):.5f}",
                      flush=True)
    np.savez_compressed(args.out, **tables)
    print(f"wrote {len(tables)} tables to {args.out}")


if __name__ == "__main__":
    main()
