"""Inputs for an encoder: the digits' held-out split, a folder of images, or given arrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from weightstats.errors import LoadError, OptionError
from weightstats.text import one_line


def image_suffixes() -> frozenset[str]:
    """File suffixes of the image formats Pillow can open (its own registry, not a copied list)."""
    from PIL import Image

    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def digits_heldout() -> tuple[Any, str]:
    """The held-out (test) split of scikit-learn's ``load_digits`` that the built-in models
    never saw in training: 359 images (N, 1, 8, 8) in [0, 1] (split of ``models.train``)."""
    try:
        from weightstats.models.train import SPLIT_SEED, TEST_FRACTION, load_split
    except ImportError as err:  # pragma: no cover - sklearn is declared by the latent extra
        raise LoadError(f"the digits data need scikit-learn ({one_line(err, 80)}): pip install "
                        "'weightstats[latent]'") from None
    x_test = load_split()[2]
    return x_test, (f"load_digits held-out split: {len(x_test)} images (seed {SPLIT_SEED}, "
                    f"{TEST_FRACTION:.0%} of 1797), never seen in training")


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (so the order is reproducible)."""
    path = Path(folder)
    if not path.exists():
        raise OptionError(f"--data {folder}: no such folder; pass a folder of images")
    if not path.is_dir():
        raise OptionError(f"--data {folder} is not a folder; pass a folder of images")
    suffixes = image_suffixes()
    try:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file())
    except OSError as err:
        raise LoadError(f"cannot list --data {folder}: {err.strerror or err}") from None
    if not files:
        raise OptionError(f"--data {folder} holds no images Pillow can read (.png, .jpg, .webp, "
                          "...); pass a folder with some")
    return files


def load_images(folder: str | os.PathLike[str], size: int, channels: int = 3, *,
                unit_pixels: bool = False) -> tuple[Any, str]:
    """Every image of ``folder`` as the VAE expects it: RGB (or grey for 1 channel), the shorter
    side resized to ``size`` (bicubic), center-cropped to ``size`` x ``size``, scaled to
    [-1, 1] (diffusers' convention) or, with ``unit_pixels``, to [0, 1]; a float32 tensor
    (N, channels, size, size)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is declared by the latent extra
        raise LoadError("reading images needs Pillow: pip install 'weightstats[latent]'") from None
    import torch

    if channels not in (1, 3):
        raise OptionError(f"this VAE takes {channels}-channel images; only 1 (grey) or 3 (RGB) "
                          "can be read from image files: pass the data as an array in Python")
    files = image_files(folder)
    out = np.empty((len(files), channels, size, size), dtype=np.float32)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as img:
                img = img.convert("RGB" if channels == 3 else "L")
                w, h = img.size
                scale = size / min(w, h)
                img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))),
                                 Image.Resampling.BICUBIC)
                left, top = (img.size[0] - size) // 2, (img.size[1] - size) // 2
                img = img.crop((left, top, left + size, top + size))
                arr = np.asarray(img, dtype=np.float32) / 255.0
                arr = arr if unit_pixels else 2.0 * arr - 1.0
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise LoadError(f"cannot read image {f.name} in --data {folder}: "
                            f"{one_line(err, 100)}; remove or replace it") from None
        out[i] = arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]
    return torch.from_numpy(out), (f"{len(files)} images from {Path(folder).name}/, resized and "
                                   f"center-cropped to {size}x{size}, scaled to "
                                   f"{'[0, 1]' if unit_pixels else '[-1, 1]'}")


def as_inputs(data: Any) -> tuple[Any, str]:
    """An array or tensor of inputs as a float32 tensor (first axis = inputs)."""
    import torch

    if torch.is_tensor(data):
        t = data.detach().float()
    else:
        try:
            t = torch.as_tensor(np.asarray(data, dtype=np.float32))
        except (TypeError, ValueError) as err:
            raise OptionError(f"cannot use {type(data).__name__} as data ({one_line(err, 80)}): "
                              "pass an array or tensor of inputs, or a folder of images") from None
    if t.ndim < 2 or len(t) < 2:
        raise OptionError(f"data of shape {tuple(t.shape)}: need at least 2 inputs along the "
                          "first axis")
    return t, f"{len(t)} given inputs of shape {tuple(t.shape[1:])}"
