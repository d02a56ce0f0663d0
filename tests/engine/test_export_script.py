"""``--export-script``: the engine writes a torchrun script that really trains and records, and
``benchmarks/gpu_check.sh`` fails cleanly on a machine without NVIDIA GPUs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, all_runs, clone_state, mlp, registered_names

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.store.registry import load_version
from aimodel_kernel.engine.training.distributed.export import ExportReport
from aimodel_kernel.engine.training.entry import train


def _export(digits, tmp_path: Path, **options) -> tuple[ExportReport, torch.nn.Module]:
    X, y = digits
    net = mlp()
    options = {"devices": 2, "epochs": 2, "batch_size": 64, "seed": 3, "name": "digits-export",
               "export": False, "export_script": str(tmp_path / "train_digits.py"), **options}
    report = train(net, X[:600], y[:600], TrainConfig(**options),
                   source={"line": "%train net X y --devices 2 --export-script train_digits.py"})
    return report, net


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
def test_exported_script_trains_under_torchrun_and_records(store, digits, tmp_path):
    report, net = _export(digits, tmp_path)
    initial = clone_state(net)
    assert isinstance(report, ExportReport)
    assert Path(report.script).is_file() and Path(report.job_file).is_file()
    assert report.job_file.endswith("train_digits.job.pkl")
    assert report.command.startswith("torchrun --nproc-per-node 2 ")
    assert report.sha256 in Path(report.script).read_text()
    assert report.tracking_uri == store.uri
    assert not all_runs(store), "exporting must not open a run"
    assert "torchrun" in report._repr_mimebundle_()["text/html"]

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", report.script]
    done = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "registered digits-export/1" in done.stdout

    runs = all_runs(store)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["train.devices"] == "2"
    assert run.data.params["train.export_script"] == "null"
    assert run.data.tags["aimodel.magic"].startswith("%train net X y --devices 2")
    assert run.data.tags["aimodel.export_script"] == report.script
    assert run.data.tags["aimodel.version"] == "1"
    assert run.data.tags["aimodel.sha256.initial.safetensors"]  # rank 0 kept the start weights
    assert run.data.metrics["world_size"] == 2.0
    assert "digits-export" in registered_names(store)
    trained = load_version("digits-export/1", into=mlp(seed=99))
    assert all(k in initial for k in trained.state_dict())
    assert any(not torch.equal(initial[k], v) for k, v in trained.state_dict().items())
    assert all(torch.equal(initial[k], v) for k, v in net.state_dict().items()), \
        "the kernel's model is untouched by an export"


def test_tampered_job_file_is_refused(store, digits, tmp_path):
    report, _ = _export(digits, tmp_path, devices=1)
    assert report.command.startswith("torchrun --nproc-per-node 1 ")
    job = Path(report.job_file)
    data = bytearray(job.read_bytes())
    data[len(data) // 2] ^= 0xFF
    job.write_bytes(bytes(data))
    done = subprocess.run([sys.executable, report.script], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "SHA-256" in done.stderr and "refusing to load it" in done.stderr
    assert not all_runs(store)


def test_bad_export_input_is_one_line(store, digits, tmp_path):
    with pytest.raises(InputError, match="does not exist") as err:
        _export(digits, tmp_path, export_script=str(tmp_path / "missing" / "t.py"))
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="is a folder"):
        _export(digits, tmp_path, export_script=str(tmp_path))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root can write anyway
            with pytest.raises(InputError, match="not writable"):
                _export(digits, tmp_path, export_script=str(locked / "t.py"))
    finally:
        locked.chmod(0o700)
    with pytest.raises(InputError, match="cannot --resume"):
        TrainConfig(export_script="t.py", resume="last")
    assert not all_runs(store) and not list(tmp_path.glob("*.job.pkl"))


def test_magic_returns_the_report(ip, digits, tmp_path):
    X, y = digits
    ip.user_ns.update(net=mlp(), Xd=X[:200], yd=y[:200])
    r = ip.run_line_magic("train", "net Xd yd --devices 2 --epochs 1 --export-script t.py")
    assert isinstance(r, ExportReport)
    assert r.script == str(tmp_path / "t.py") and Path(r.job_file).name == "t.job.pkl"
    assert "torchrun --nproc-per-node 2" in str(r)


# -- benchmarks/gpu_check.sh --------------------------------------------------------------------
GPU_CHECK = REPO / "benchmarks" / "gpu_check.sh"


def test_gpu_check_python_parts_compile(tmp_path):
    sidecars = sorted((REPO / "benchmarks").glob("gpu_*.py"))
    assert sidecars
    for path in sidecars:
        subprocess.run([sys.executable, "-m", "py_compile", str(path)], check=True)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU")
def test_gpu_check_without_gpu_exits_2():
    done = subprocess.run(["bash", str(GPU_CHECK)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "no NVIDIA GPU" in done.stdout + done.stderr


@pytest.mark.slow
def test_an_exported_script_trains_a_bert_on_dict_batches(store, tmp_path):
    """The batch contract travels in the job file: a dict X of token ids and the model's own
    loss, trained by torchrun on two processes, recorded into the same store."""
    pytest.importorskip("transformers")
    from token_models import labels_for, tiny_bert, token_batch

    X, y = token_batch(64), labels_for(64, classes=2)
    bert = tiny_bert(num_labels=2).train()
    report = train(bert, X, y, TrainConfig(devices=2, epochs=1, batch_size=16, seed=0,
                                           name="bert-export", export=False,
                                           export_script=str(tmp_path / "train_bert.py")))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", report.script]
    done = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "registered bert-export/1" in done.stdout
    loaded = load_version("bert-export/1")  # by its recorded transformers class
    with torch.no_grad():
        logits = loaded(**X).logits
    assert logits.shape == (64, 2) and torch.isfinite(logits).all()
