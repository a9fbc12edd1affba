"""Null distributions of the KS and Anderson-Darling statistics when parameters are fitted.

After fitting loc and scale, D no longer follows Kolmogorov's distribution: it is stochastically smaller,
so scipy's p-value is too large (Lilliefors 1967); the same holds for A^2. For a location-scale family
the null distribution of either statistic with fitted loc/scale depends only on n; with a fitted shape it
also depends on the true shape. We simulate both by parametric bootstrap — draw n values, refit every
parameter, recompute D and A^2 on the same replicate — once per (family, n, replicates, shape grid
point), and reuse the tables for every tensor:

* tables for the sizes in ``LADDER`` at ``DEFAULT_REPLICATES`` replicates ship with the package
  (``weightstats/data/ks_null.npz``), made by ``python -m weightstats.fitting.nulltables``;
* any other size or replicate count is simulated on first use and cached under ``$WEIGHTSTATS_CACHE``
  (default: the user cache folder from platformdirs, ``$XDG_CACHE_HOME/weightstats`` on Linux).

A p-value read off a table of B replicates is (1 + #{T* >= t}) / (B + 1); its Monte Carlo standard
error, sqrt(B p (1 - p)) / (B + 1), is reported beside it (at B = 10,000 it is at most 0.005, and 0.0022
at p = 0.05). The tables use their own fixed seed, independent of the user's seed, so a table is a fixed
reference.

Tables are stored compactly: each sorted table is rounded to a fixed step (1e-7 for D, 1e-5 for A^2,
far below the spacing of neighbouring replicates), and the non-negative differences of the rounded
integers are stored as four byte planes, which deflate compresses about 3x better than floats.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import tempfile
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..cachedir import cache_root
from .families import FAMILIES, Family
from .ks import gof_statistics_rows

# Sample sizes with shipped tables. A tensor with MIN_N <= n < ks_sample values is tested on a random
# subsample of the largest size here that is <= n, so default options never simulate a table.
LADDER = (30, 50, 100, 200, 300, 500, 1000, 2000, 5000)
DEFAULT_REPLICATES = 10_000
STATISTICS = ("ks", "ad")
_STEP = {"ks": 1e-7, "ad": 1e-5}
# Largest stored value: D <= 1 always; an A^2 this large (far beyond any sane null replicate) only
# arises from a failed fit and is stored as the cap, which keeps every difference within 32 bits.
_CAP = {"ks": 1.0, "ad": 1e4}
TABLE_SEED = 20261125
_CHUNK_VALUES = 2_000_000  # rows are simulated in chunks of about this many values (memory bound)
BLOCK = 2000  # replicates per independently seeded block

# A null table is only valid for the fitting code that made it: bump this when a change to a family's
# fit moves D or A^2 (2: gennorm's loc lands exactly on a data value below beta = 1; 3: A^2 beside D,
# 10,000 replicates, sizes down to 30), so that tables cached by an older version are simulated afresh.
# The shipped tables are regenerated with it.
NULL_TABLE_VERSION = 3


def _key(family: str, n: int, replicates: int, shape: float | None) -> str:
    shape_part = "none" if shape is None else f"{shape:.6g}"
    return f"{family}|n={n}|B={replicates}|shape={shape_part}"


def standardized_tails(family: Family, x: np.ndarray, loc, scale, *shapes) -> tuple[np.ndarray, np.ndarray]:
    """Standardized values u = (x - loc) / scale and their smaller tail probabilities F(-|u|).

    Every registered family is symmetric about its loc (the conformance suite checks it), so one CDF
    evaluation per value gives F and 1 - F both without cancellation (what Anderson-Darling's
    log(1 - F) needs in the far tail).
    """
    u = (x - loc) / scale
    return u, family.cdf(-np.abs(u), 0.0, 1.0, *shapes)


def sample_statistics(family: Family, x_sorted: np.ndarray, loc: float, scale: float,
                      *shapes: float) -> tuple[float, float]:
    """(D, A^2) of one sorted sample against a fit, computed exactly as the null tables compute them.

    A subsample of a 16-bit tensor repeats many values: the CDF (dear for t and gennorm) is then
    evaluated once per distinct value, which gives the same numbers.
    """
    first = np.concatenate([[True], x_sorted[1:] != x_sorted[:-1]])
    if 4 * int(np.count_nonzero(first)) > 3 * x_sorted.size:
        u, tail = standardized_tails(family, x_sorted[np.newaxis, :], loc, scale, *shapes)
    else:
        starts = np.flatnonzero(first)
        lengths = np.diff(np.append(starts, x_sorted.size))
        u_once, tail_once = standardized_tails(family, x_sorted[starts], loc, scale, *shapes)
        u = np.repeat(u_once, lengths)[np.newaxis, :]
        tail = np.repeat(tail_once, lengths)[np.newaxis, :]
    d, a2 = gof_statistics_rows(u, tail)
    return float(d[0]), float(a2[0])


def _refit_statistics(family: Family, rng: np.random.Generator, rows: int, n: int,
                      shapes: tuple[float, ...]) -> dict[str, np.ndarray]:
    """D and A^2 of ``rows`` samples of n standardized draws, every parameter refitted on each."""
    rows_per_chunk = max(1, _CHUNK_VALUES // n)
    ks, ad = [], []
    for start in range(0, rows, rows_per_chunk):
        x = np.sort(family.standard_rvs(rng, (min(rows_per_chunk, rows - start), n), *shapes), axis=1)
        fit = family.fit_rows(x)
        u, tail = standardized_tails(family, x, *(v[:, None] for v in family.theta_rows(fit)))
        d, a2 = gof_statistics_rows(u, tail)
        ks.append(d)
        ad.append(a2)
    return {"ks": np.concatenate(ks), "ad": np.concatenate(ad)}


def simulate_block(family: Family, n: int, shape: float | None, block: int,
                   rows: int | None = None) -> dict[str, np.ndarray]:
    """Replicates ``block * BLOCK ..`` of D and A^2 (unsorted, float64): ``rows`` (default BLOCK) draws
    of n values from the standardized family, every parameter refitted on each.

    Each block has its own seed, derived from (family, n, shape, block), so a table of B replicates is
    the first B / BLOCK blocks: tables of different sizes nest, and blocks can be made in parallel.
    """
    key = f"{family.name}|n={n}|shape={'none' if shape is None else f'{shape:.6g}'}|block={block}"
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng([TABLE_SEED, digest])
    rows = BLOCK if rows is None else rows
    return _refit_statistics(family, rng, rows, n, () if shape is None else (shape,))


def finish_table(blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Sorted tables from blocks, rounded to the storage step (shipped and simulated tables are the
    same numbers). A replicate whose fit failed (NaN) counts as the worst possible fit: the cap."""
    out = {}
    for s in STATISTICS:
        values = np.concatenate([b[s] for b in blocks])
        values = np.clip(np.nan_to_num(values, nan=_CAP[s], posinf=_CAP[s]), 0.0, _CAP[s])
        out[s] = decode(encode(np.sort(values), s), s)
    return out


def simulate_null(family: Family, n: int, replicates: int, shape: float | None) -> dict[str, np.ndarray]:
    """Sorted bootstrap replicates of D and A^2 for ``family`` at size ``n`` (refit every replicate)."""
    blocks = [simulate_block(family, n, shape, b, min(BLOCK, replicates - b * BLOCK))
              for b in range(-(-replicates // BLOCK))]
    return finish_table(blocks)


def encode(table: np.ndarray, statistic: str) -> np.ndarray:
    """A sorted table as a (4, B) uint8 array: byte planes of its rounded integer differences."""
    q = np.rint(table / _STEP[statistic]).astype(np.int64)
    diffs = np.diff(q, prepend=0)
    if diffs.min() < 0 or diffs.max() >= 2**32:
        raise ValueError(f"{statistic} table out of the storable range")
    return np.ascontiguousarray(diffs.astype("<u4").view(np.uint8).reshape(-1, 4).T)


def decode(planes: np.ndarray, statistic: str) -> np.ndarray:
    """Inverse of ``encode``: the sorted table in float64."""
    diffs = np.ascontiguousarray(planes.T).view("<u4").ravel().astype(np.int64)
    return np.cumsum(diffs) * _STEP[statistic]


def _cache_dir() -> Path:
    return cache_root() / f"ks-null-v{NULL_TABLE_VERSION}"


@lru_cache(maxsize=1)
def _shipped() -> dict[str, np.ndarray]:
    """The shipped tables, still encoded, keyed ``"<table key>|<statistic>"``."""
    try:
        ref = resources.files("weightstats").joinpath("data/ks_null.npz")
        with resources.as_file(ref) as path, np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (FileNotFoundError, OSError, ValueError):
        return {}


@lru_cache(maxsize=1)
def _shipped_keys() -> dict[tuple[str, int, str | None], str]:
    """Shipped table keys by (family, n, shape as in the key): the replicate count each holds."""
    out = {}
    for name in _shipped():
        parts = name.split("|")
        if len(parts) != 5:  # not "<family>|n=..|B=..|shape=..|<statistic>"
            continue
        family, n_part, _, shape_part, _ = parts
        shape = shape_part.removeprefix("shape=")
        out[(family, int(n_part.removeprefix("n=")), None if shape == "none" else shape)] = \
            name.rsplit("|", 1)[0]
    return out


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, **arrays)
    os.chmod(tmp.name, 0o644)  # a temporary file is private; the tables are not
    os.replace(tmp.name, path)


@lru_cache(maxsize=512)
def null_tables(family: str, n: int, replicates: int, shape: float | None) -> dict[str, np.ndarray]:
    """Sorted null replicates of D (``"ks"``) and A^2 (``"ad"``): shipped, cached, or simulated now."""
    key = _key(family, n, replicates, shape)
    shipped = _shipped()
    if replicates == DEFAULT_REPLICATES:
        # The default count means "the shipped table", which may hold fewer replicates where its
        # generation was cut short; its p-values' standard errors say so.
        key = _shipped_keys().get((family, n, None if shape is None else f"{shape:.6g}"), key)
    if all(f"{key}|{s}" in shipped for s in STATISTICS):
        return {s: decode(shipped[f"{key}|{s}"], s) for s in STATISTICS}
    path = _cache_dir() / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".npz")
    try:
        with np.load(path) as data:
            return {s: decode(data[s], s) for s in STATISTICS}
    except (FileNotFoundError, OSError, ValueError, KeyError):
        pass
    tables = simulate_null(FAMILIES[family], n, replicates, shape)
    try:  # a cache we cannot write only costs time
        _save_atomic(path, {s: encode(tables[s], s) for s in STATISTICS})
    except OSError:
        pass
    return tables


def _pvalue(table: np.ndarray, t: float) -> tuple[float, float]:
    """Monte Carlo p-value (1 + #{T* >= t}) / (B + 1), never 0 and exact in size for a freshly drawn
    table, and the variance of that estimate given the true p (binomial, plugged in)."""
    b = table.size
    exceed = b - np.searchsorted(table, t, side="left")
    p = (1 + exceed) / (b + 1)
    return float(p), float(b * p * (1 - p) / (b + 1) ** 2)


def _grid_points(family: Family, shape: float) -> tuple[list[tuple[float | None, float]], str]:
    """The tables (shape grid points) a p-value is read from, with their interpolation weights."""
    grid = family.shape_grid
    if grid is None:
        return [(None, 1.0)], ""
    g = np.asarray(grid)
    if shape <= g[0] or shape >= g[-1]:
        end = float(g[0] if shape <= g[0] else g[-1])
        return [(end, 1.0)], f"null table at {family.shape_name}={end:g} (fit outside table range)"
    hi = int(np.searchsorted(g, shape))
    lo = hi - 1
    w = float((np.log(shape) - np.log(g[lo])) / (np.log(g[hi]) - np.log(g[lo])))
    return [(float(g[lo]), 1.0 - w), (float(g[hi]), w)], ""


def bootstrap_pvalues(family: Family, n: int, d: float, a2: float, shapes: tuple[float, ...],
                      replicates: int, *, seed: int = 0) -> tuple[dict[str, float], str]:
    """Valid p-values for D = ``d`` and A^2 = ``a2`` observed on ``n`` values, all parameters fitted.

    Returns ({"ks_pvalue", "ks_pvalue_se", "ad_pvalue", "ad_pvalue_se"}, note). For shape families the
    p-value is interpolated (in log shape) between the two grid tables that bracket the fitted shape,
    p = (1 - w) p_lo + w p_hi, with Monte Carlo variance (1 - w)^2 var_lo + w^2 var_hi (the tables are
    independent simulations); outside the grid the nearest end is used and the note says so. A family
    without tables (``null_tables`` False: the null law depends on several shapes) gets a parametric
    bootstrap of this very fit, ``family.bootstrap_replicates`` refits seeded by ``seed``.
    """
    names = [f"{s}_pvalue{part}" for s in STATISTICS for part in ("", "_se")]
    if not np.all(np.isfinite(shapes)):
        return dict.fromkeys(names, float("nan")), "no shape estimate"
    observed = {"ks": d, "ad": a2}
    if not family.null_tables:
        rows = min(int(replicates), family.bootstrap_replicates)
        digest = hashlib.sha256(f"{family.name}|n={n}|{shapes!r}".encode()).digest()[:8]
        rng = np.random.default_rng([int(seed), int.from_bytes(digest, "little")])
        table = finish_table([_refit_statistics(family, rng, rows, n, tuple(shapes))])
        out = {}
        for s in STATISTICS:
            p, var = _pvalue(table[s], observed[s])
            out[f"{s}_pvalue"], out[f"{s}_pvalue_se"] = p, math.sqrt(var)
        return out, f"p-values by parametric bootstrap of this fit ({rows} refits)"
    points, note = _grid_points(family, shapes[0] if shapes else float("nan"))
    out = {}
    for s in STATISTICS:
        p = var = 0.0
        for point, weight in points:
            p_i, var_i = _pvalue(null_tables(family.name, n, replicates, point)[s], observed[s])
            p += weight * p_i
            var += weight * weight * var_i
        out[f"{s}_pvalue"], out[f"{s}_pvalue_se"] = float(p), math.sqrt(var)
    return out, note


def subsample_size(n: int, ks_sample: int) -> int:
    """Size of the subsample the valid p-values use: ``ks_sample`` when n reaches it, otherwise the
    largest shipped size <= n (n itself below the smallest, which only happens below MIN_N)."""
    if n >= ks_sample:
        return ks_sample
    fitting = [m for m in LADDER if m <= n]
    return fitting[-1] if fitting else n


def position_subsample(values: np.ndarray, m: int, seed: int, top: float, center: float,
                       spread: float) -> np.ndarray:
    """The KS subsample: ``m`` of the finite ``values`` at positions drawn without replacement in
    their storage order (seeded by ``seed``), standardized exactly as the fitter standardizes all
    values, ((v / top) - center) / spread in float64, then sorted.

    Drawing positions, not ranks of the sorted values, makes the subsample a simple random sample of
    the tensor, so its p-value is a valid p-value of the data (ranks fixed by the seed gave every
    tensor of one size nearly the same order statistics). Only the ``m`` drawn values are copied.
    """
    pos = np.random.default_rng(seed).choice(values.size, m, replace=False)
    sub = values[pos].astype(np.float64)
    sub /= top
    sub -= center
    sub /= spread
    sub.sort()
    return sub


# Generation order: families without a shape first (cheap closed forms), then in registry order, each
# block by block (largest size first within a block), so that wherever it is stopped the cheap
# families are complete and each table of the dearest one holds about the same number of blocks.
_ORDER = {name: (fam.shape_grid is not None, i) for i, (name, fam) in enumerate(FAMILIES.items())}


def _block_path(work: str, family: str, n: int, shape: float | None, block: int) -> Path:
    name = f"{family}|n={n}|shape={shape}|block={block}|v{NULL_TABLE_VERSION}"
    return Path(work) / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".npz")


def _make_block(task: tuple[str, int, float | None, int, str]) -> str:
    family, n, shape, block, work = task
    path = _block_path(work, family, n, shape, block)
    label = f"{_key(family, n, (block + 1) * BLOCK, shape)} block {block}"
    if path.exists():
        return f"{label}: done before"
    t0 = time.perf_counter()
    _save_atomic(path, simulate_block(FAMILIES[family], n, shape, block))
    return f"{label}: {time.perf_counter() - t0:.1f} s"


def _chosen_families(parser: argparse.ArgumentParser, names: str | None) -> list[Family]:
    """The families with null tables that ``--families`` names (all of them without it)."""
    if names is None:
        return [fam for fam in FAMILIES.values() if fam.null_tables]
    chosen = []
    for name in (s.strip() for s in names.split(",") if s.strip()):
        fam = FAMILIES.get(name)
        if fam is None or not fam.null_tables:
            have = ", ".join(f for f, fam in FAMILIES.items() if fam.null_tables)
            parser.error(f"--families: {name!r} has no null tables; choose from {have}")
        chosen.append(fam)
    if not chosen:
        parser.error("--families: name at least one family")
    return chosen


def merge_tables(path: Path, new: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tables stored in ``path`` (if any) with ``new`` added: a new table replaces a stored one
    of the same family, size and shape (whatever its replicate count); every other stored array is
    kept unchanged."""
    def table_id(name: str) -> tuple[str, ...]:
        parts = name.split("|")  # "<family>|n=..|B=..|shape=..|<statistic>"
        return (parts[0], parts[1], *parts[3:]) if len(parts) == 5 else (name,)

    try:
        with np.load(path) as data:
            old = {k: data[k] for k in data.files}
    except FileNotFoundError:
        old = {}
    replaced = {table_id(k) for k in new}
    kept = {k: v for k, v in old.items() if table_id(k) not in replaced}
    return {**kept, **new}


def main(argv: list[str] | None = None) -> None:
    """Regenerate the shipped tables: ``nice python -m weightstats.fitting.nulltables --jobs 2``.

    Each block of replicates is written to ``--work`` as it is finished (a rerun skips finished
    ones); ``--gather`` then writes ``--out`` from the finished blocks, each table holding the
    longest run of finished blocks from block 0. ``--families`` makes only those families' tables
    and merges them into the existing ``--out``: every other table is kept as it was, byte for byte.
    """
    import multiprocessing

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "ks_null.npz"))
    parser.add_argument("--replicates", type=int, default=DEFAULT_REPLICATES)
    parser.add_argument("--sizes", default=",".join(map(str, LADDER)))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--work", default=str(_cache_dir() / "generate"))
    parser.add_argument("--gather", action="store_true", help="only gather finished blocks into --out")
    parser.add_argument("--families", default=None,
                        help="comma-separated families to make; merged into the existing --out")
    args = parser.parse_args(argv)
    if args.replicates % BLOCK:
        parser.error(f"--replicates must be a multiple of {BLOCK}")
    chosen = _chosen_families(parser, args.families)
    tables = [(fam.name, n, shape) for n in (int(s) for s in args.sizes.split(","))
              for fam in chosen for shape in (fam.shape_grid or (None,))]
    blocks = args.replicates // BLOCK
    tasks = [(f, n, shape, b, args.work) for b in range(blocks) for f, n, shape in tables]
    tasks.sort(key=lambda t: (_ORDER[t[0]], t[3], -t[1]))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not args.gather:
        with multiprocessing.Pool(max(1, args.jobs)) as pool:
            for line in pool.imap_unordered(_make_block, tasks, chunksize=1):
                print(f"[{time.perf_counter() - t0:7.0f} s] {line}", flush=True)
    arrays: dict[str, np.ndarray] = {}
    for family, n, shape in tables:
        done = []
        for b in range(blocks):
            path = _block_path(args.work, family, n, shape, b)
            if not path.exists():
                break
            with np.load(path) as data:
                done.append({s: data[s] for s in STATISTICS})
        if not done:
            print(f"{family} n={n} shape={shape}: no finished block, not shipped")
            continue
        table = finish_table(done)
        key = _key(family, n, len(done) * BLOCK, shape)
        arrays.update({f"{key}|{s}": encode(table[s], s) for s in STATISTICS})
    if args.families is not None:
        arrays = merge_tables(Path(args.out), arrays)
    _save_atomic(Path(args.out), arrays)
    print(f"wrote {len(arrays) // 2} tables to {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
