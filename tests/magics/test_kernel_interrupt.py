"""The notebook's stop button (a kernel interrupt) during %train, in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel
from kernel_client import interrupt_when, run, value

SETUP = """
%load_ext aimodel_kernel
import torch, time
from torch import nn
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
X = X / 16.0
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))

class Slow(nn.Module):
    # wraps net and sleeps a little per batch so the interrupt lands mid-training
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
    def forward(self, x):
        time.sleep(0.01)
        return self.inner(x)

slow = Slow(net)
"""


@pytest.mark.slow
def test_stop_button_ends_training_cleanly_and_resume_continues(tmp_path: Path) -> None:
    km, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        run(client, SETUP)
        # once the first epoch has ended (progress shows it), press "stop"
        line = "r = %train slow X y --epochs 8 --batch-size 32 --seed 1"
        reply = interrupt_when(km, client, line, "epoch 2/8")
        assert reply["status"] == "ok", reply  # no traceback in the cell

        status = value(client, "r.status")
        epochs_done = value(client, "r.epochs_completed")
        assert status == "interrupted"
        assert 1 <= epochs_done < 8
        assert "--resume" in value(client, "r.resume_hint")
        run(client, "import mlflow; info = mlflow.MlflowClient(r.tracking_uri).get_run(r.run_id)")
        run_status = value(client, "info.info.status")
        assert run_status == "KILLED"
        # the module holds the weights of the last completed epoch, which the checkpoint holds
        run(client, "from aimodel_kernel.engine import checkpoints; from pathlib import Path\n"
                    "ck = checkpoints.read(Path(r.checkpoint))")
        assert value(client, "ck.epoch") == epochs_done - 1
        same = value(client, "all(torch.equal(v, ck.model[k]) "
                             "for k, v in slow.state_dict().items())")
        assert same is True
        # the kernel is alive and resume finishes the run
        run(client, "r2 = %train slow X y --epochs 8 --batch-size 32 --resume --quiet")
        assert value(client, "r2.status") == "finished"
        assert value(client, "r2.run_id == r.run_id") is True
        assert value(client, "r2.epochs_completed") == 8
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
