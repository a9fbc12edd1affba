"""Sorting large float32 arrays by bucketing on their leading 16 bits first.

NumPy's vectorized sort slows as arrays outgrow the core's caches (here ~15 ns a value at 10^4
values, ~36 ns at 2.4 * 10^6). A float32's leading 16 bits (sign, exponent, 7 mantissa bits)
order it up to its last 16 bits, so one counting pass over them places every value in a bucket
of ~``PER_BUCKET`` neighbours in value; the buckets are then sorted one by one, in cache. A
stable radix ``argsort`` of the bucket numbers and one gather do the placing (NumPy has no
scatter-by-key). On the 2.4 M-value layers of a ResNet-50 this takes ~26 ns a value.
"""

from __future__ import annotations

import sys

import numpy as np

BUCKET_FROM = 1 << 18  # below this, the counting pass's fixed cost outweighs the gain
PER_BUCKET = 1024  # values per bucket on average: a bucket's sort runs in the L1/L2 cache

# The 65,536 leading-16-bit patterns in the order of the values they start: negative patterns
# from the most negative (0xFFFF) up to -0.0 (0x8000), then the positive ones from +0.0 up.
_VALUE_ORDER = np.concatenate([np.arange(0xFFFF, 0x7FFF, -1), np.arange(0, 0x8000)])


def bucket_sorted(values: np.ndarray) -> np.ndarray:
    """``np.sort(values)`` for a 1-D float32 array without NaN, by buckets of leading bits.

    Equal values come out equal (-0.0 and +0.0 included, which ``np.sort`` may order either
    way); arrays this does not speed up (short, not float32, not contiguous, big-endian) go to
    ``np.sort``.
    """
    n = values.size
    if (values.dtype != np.float32 or values.ndim != 1 or n < BUCKET_FROM
            or not values.flags.c_contiguous or sys.byteorder != "little"):
        return np.sort(values)
    buckets = min(n // PER_BUCKET, 65535)
    leading = values.view(np.uint16)[1::2]  # little-endian: the upper half of each value
    counts = np.bincount(leading, minlength=65536)[_VALUE_ORDER]
    below = np.cumsum(counts) - counts  # values before each pattern, in value order
    bucket_of = np.empty(65536, dtype=np.uint8 if buckets <= 256 else np.uint16)
    bucket_of[_VALUE_ORDER] = below * buckets // n  # nondecreasing in value: buckets are ranges
    ids = np.take(bucket_of, leading)
    out = np.take(values, np.argsort(ids, kind="stable"))  # stable on uint8/16: a radix sort
    start = 0
    for end in np.cumsum(np.bincount(ids, minlength=buckets)).tolist():
        if end - start > 1:
            out[start:end].sort()
        start = end
    return out
