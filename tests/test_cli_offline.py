"""No network and an empty (or partial) Hugging Face cache, HF_HUB_OFFLINE not set: one short
request, then one line naming the file and the cache folder; cached weights load with no
request at all; the model-name cache spares `list` and unknown names the big imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import huggingface_hub
import huggingface_hub.constants
import numpy as np
import pytest
from click.testing import CliRunner
from hubcache import make_snapshot

from weightstats.cli import cli

TIMM_MODEL = "resnet18.a1_in1k"


@pytest.fixture
def hub_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the hub requests: model_info, and timm's own download (which retries with
    back-off for ~50 s when there is no network; it must never be reached)."""
    import timm.models._hub as timm_hub

    calls = {"model_info": 0, "timm_download": 0}
    real_info = huggingface_hub.HfApi.model_info

    def model_info(self, *args, **kwargs):
        calls["model_info"] += 1
        return real_info(self, *args, **kwargs)

    def timm_download(*args, **kwargs):
        calls["timm_download"] += 1
        raise OSError("timm's hub download was called")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(timm_hub, "hf_hub_download", timm_download)
    return calls




def test_uncached_timm_fails_after_one_request(online_cache: Path, hub_calls, tmp_path) -> None:
    result = CliRunner().invoke(cli, ["fit", f"timm:{TIMM_MODEL}", "-o", str(tmp_path / "r")])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "..." not in lines[0], result.output
    assert "model.safetensors" in lines[0] and "pytorch_model.bin" in lines[0]
    assert str(online_cache / f"models--timm--{TIMM_MODEL}") in lines[0]
    assert "unreachable" in lines[0]
    assert hub_calls == {"model_info": 1, "timm_download": 0}
    assert not (tmp_path / "r").exists()


def test_cached_timm_weights_load_with_no_request(online_cache: Path, hub_calls) -> None:
    import timm
    import torch
    from safetensors.torch import save_file

    from weightstats.sources import resolve

    torch.manual_seed(5)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    snap = make_snapshot(online_cache, f"timm/{TIMM_MODEL}")
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    tensors = {t.name: t for t in resolve(f"timm:{TIMM_MODEL}").tensors()}
    np.testing.assert_array_equal(tensors["fc.weight"].load(), state["fc.weight"].numpy())
    assert hub_calls == {"model_info": 0, "timm_download": 0}


def test_hf_tag_found_through_the_cache_scan(online_cache: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from weightstats.sources import resolve

    snap = make_snapshot(online_cache, "acme/tagged", ref="v1")
    save_file({"w.weight": torch.ones(4, 4)}, str(snap / "model.safetensors"))
    assert [t.name for t in resolve("hf:acme/tagged@v1").tensors()] == ["w.weight"]
    with pytest.raises(Exception, match="put model.safetensors into"):
        list(resolve("hf:acme/tagged").tensors())  # no refs/main: main is not cached


# A subprocess as a user runs it: the network cut in sitecustomize (no test machine may reach
# the hub for real), HF_HUB_OFFLINE unset, an empty cache.
_NO_NETWORK = textwrap.dedent("""
    import socket

    def _refuse(*args, **kwargs):
        raise OSError("network blocked by test")

    socket.getaddrinfo = _refuse
    socket.create_connection = _refuse
    socket.socket.connect = _refuse
""")


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_NO_NETWORK)
    full = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "COLUMNS")}
    full.update(PYTHONPATH=str(site), HF_HOME=str(tmp_path / "hf"), **env)
    full.pop("HF_HUB_CACHE", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full,
                          timeout=120, cwd=tmp_path)


def test_offline_timm_from_the_console(tmp_path: Path) -> None:
    proc = _run(["-m", "weightstats", "fit", f"timm:{TIMM_MODEL}"], tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Retry" not in proc.stderr, proc.stderr
    assert str(tmp_path / "hf" / "hub" / f"models--timm--{TIMM_MODEL}") in lines[0]


_NAMES_PROBE = textwrap.dedent("""
    import sys
    from weightstats.errors import SpecError
    from weightstats.sources import list_models, resolve
    names = list_models("resnet*")
    try:
        resolve("gpt2")
    except SpecError as err:
        message = str(err)
    print(len(names), "torchvision" in sys.modules, "timm" in sys.modules, message)
""")


def test_model_names_cache_spares_the_imports(tmp_path: Path) -> None:
    env = {"WEIGHTSTATS_CACHE": str(tmp_path / "cache")}
    first = _run(["-c", _NAMES_PROBE], tmp_path, **env)
    assert first.returncode == 0, first.stderr
    for name in ("torchvision-names-v1.json", "timm-names-v1.json"):
        assert (tmp_path / "cache" / name).is_file()
    second = _run(["-c", _NAMES_PROBE], tmp_path, **env)
    count, tv, timm, message = second.stdout.split(" ", 3)
    assert first.stdout.split(" ", 1)[0] == count and int(count) >= 5
    assert (tv, timm) == ("False", "False") and "hf:gpt2" in message


def test_model_names_cache_is_keyed_by_versions(tmp_path: Path) -> None:
    from weightstats.sources import names

    path = tmp_path / names.FILE_NAMES["torchvision"]
    data = {"versions": names.versions("torchvision"),
            "models": {"x": {"tags": [], "default": ""}}}
    path.write_text(json.dumps(data))
    assert names._read(path, "torchvision") == data
    data["versions"] = {**data["versions"], "torchvision": "0.0.0"}  # an upgrade
    path.write_text(json.dumps(data))
    assert names._read(path, "torchvision") is None  # read again from torchvision
    path.write_text("{not json")
    assert names._read(path, "torchvision") is None


_TORCHVISION_ONLY = textwrap.dedent("""
    import sys
    from weightstats.sources import resolve
    resolve("resnet18:none")
    print("timm" in sys.modules)
""")


def test_a_torchvision_name_never_imports_timm(tmp_path: Path) -> None:
    proc = _run(["-c", _TORCHVISION_ONLY], tmp_path, WEIGHTSTATS_CACHE=str(tmp_path / "c"))
    assert proc.stdout.strip() == "False", proc.stderr


def test_torchvision_dead_network_fails_without_downloading(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A network that drops packets: torch's download has no timeout and would hang; one
    HEAD request with a timeout decides, and the download is never started."""
    import urllib.request

    import torchvision.models as tvm

    from weightstats.errors import OfflineError
    from weightstats.sources import resolve

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    timeouts: list[float] = []

    def silent(request, timeout=None):
        timeouts.append(timeout)
        raise TimeoutError("timed out")

    def download(self, *args, **kwargs):
        raise AssertionError("the download started")

    monkeypatch.setattr(urllib.request, "urlopen", silent)
    monkeypatch.setattr(tvm.ResNet18_Weights, "get_state_dict", download, raising=False)
    with pytest.raises(OfflineError) as err:
        list(resolve("resnet18").tensors())
    assert timeouts and all(t is not None for t in timeouts)
    assert "resnet18-f37072fd.pth" in str(err.value) and "TimeoutError" in str(err.value)
