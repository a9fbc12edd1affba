"""bucket_sorted must give np.sort's values exactly, whatever the float32 values look like."""

import numpy as np
import pytest

from weightstats import bucketsort
from weightstats.bucketsort import bucket_sorted


def _cases(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 5000
    heavy = rng.standard_t(3, n) * np.exp(0.5 * rng.standard_normal(n))
    return {
        "heavy_tailed": heavy,
        "one_sign": np.abs(heavy),
        "negative": -np.abs(heavy) - 1.0,
        "ties_on_a_grid": np.round(heavy * 8) / 8,
        "signed_zeros": np.where(rng.random(n) < 0.4, np.where(rng.random(n) < 0.5, -0.0, 0.0),
                                 heavy),
        "subnormals": heavy * 1e-40,
        "extremes": np.concatenate([heavy, [3.4e38, -3.4e38, 1e-45, -1e-45, np.inf, -np.inf]]),
        "two_values": np.where(rng.random(n) < 0.3, -1.5, 2.0),
        "all_equal": np.full(n, 0.25),
        "one_prefix": 1.0 + rng.random(n) * 2.0**-8,  # every value shares its leading 16 bits
    }


@pytest.mark.parametrize("name", list(_cases(np.random.default_rng(0))))
def test_bucket_sorted_equals_np_sort(name: str, monkeypatch) -> None:
    # small arrays take the bucketed path too, so every case exercises it
    monkeypatch.setattr(bucketsort, "BUCKET_FROM", 64)
    monkeypatch.setattr(bucketsort, "PER_BUCKET", 16)
    x = _cases(np.random.default_rng(1))[name].astype(np.float32)
    rng = np.random.default_rng(2)
    for values in (x, x[rng.permutation(x.size)], np.sort(x)[::-1].copy()):
        out = bucket_sorted(values)
        assert out.dtype == np.float32 and out.shape == values.shape
        np.testing.assert_array_equal(out, np.sort(values))
        assert np.shares_memory(out, values) is False


def test_large_array_default_buckets() -> None:
    rng = np.random.default_rng(3)
    x = (rng.laplace(size=bucketsort.BUCKET_FROM * 2 + 17) * 0.02).astype(np.float32)
    np.testing.assert_array_equal(bucket_sorted(x), np.sort(x))


@pytest.mark.parametrize("values", [
    np.random.default_rng(4).standard_normal(300_000),  # float64
    np.random.default_rng(5).standard_normal(600_000).astype(np.float32)[::2],  # strided
])
def test_other_arrays_fall_back_to_np_sort(values: np.ndarray) -> None:
    np.testing.assert_array_equal(bucket_sorted(values), np.sort(values))
