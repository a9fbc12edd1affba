"""A real third-party ONNX model: nudenet's YOLOv8n (320n.onnx), fetched once from PyPI."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from weightstats.layers import select
from weightstats.sources import resolve

NUDENET = "nudenet==3.4.2"  # pinned: the expected layer count belongs to this release
CACHE = Path(os.environ.get("WEIGHTSTATS_TEST_CACHE", Path.home() / ".cache" / "weightstats-test"))


def nudenet_wheel() -> Path:
    """The cached wheel, downloaded with pip on first use; skips when PyPI is unreachable."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(CACHE.glob("nudenet-3.4.2-*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", NUDENET,
               "-d", str(CACHE)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as err:
            pytest.skip(f"cannot download {NUDENET} from PyPI ({err}); needs network once")
        wheels = sorted(CACHE.glob("nudenet-3.4.2-*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            pytest.skip(f"cannot download {NUDENET} from PyPI ({tail[0]}); needs network once")
    return wheels[0]


@pytest.fixture(scope="module")
def yolo_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nudenet") / "320n.onnx"
    with zipfile.ZipFile(nudenet_wheel()) as z:
        out.write_bytes(z.read("nudenet/320n.onnx"))
    return out


def test_yolov8n_conv_weights(yolo_onnx: Path) -> None:
    src = resolve(yolo_onnx)
    assert src.name == "320n"
    tensors = list(src.tensors())
    convs = [t for t in tensors if t.kind == "conv" and len(t.shape) == 4]
    assert len(convs) == 64
    assert all(t.is_float for t in convs)
    ints = [t for t in tensors if t.dtype == "int64"]
    assert ints, "the exported graph stores int64 shape constants as initializers"
    picked = list(select(tensors, kinds=None))
    assert not any(t.dtype == "int64" for t in picked)
    assert len(list(select(tensors))) == 64  # default kinds: only the convs, no linear layers
    w = convs[0].load()
    assert w.shape == convs[0].shape and w.dtype.name == "float32"
