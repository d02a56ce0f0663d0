"""The notebook's stop button during ``%train --devices 2`` in a real Jupyter kernel, then
``--resume``: the same MLflow run finishes with the weights of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel
from kernel_client import interrupt_when, run, text_of, value
from test_kernel_interrupt import SETUP

LINE = "slow X y --epochs 8 --batch-size 32 --seed 1 --devices 2 --deterministic --no-export"


@pytest.mark.slow
def test_stop_button_with_devices_keeps_the_epoch_and_resume_finishes_the_run(
        tmp_path: Path) -> None:
    km, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        run(client, SETUP)
        run(client, "import copy; start = copy.deepcopy(slow.state_dict())")
        # SIGINT to the kernel: every rank stops after the same step
        reply = interrupt_when(km, client, f"r = %train {LINE}", "epoch 2/8", timeout=180)
        assert reply["status"] == "ok", reply

        assert value(client, "r.status") == "interrupted"
        done = value(client, "r.epochs_completed")
        assert 1 <= done < 8
        assert f"--resume {value(client, 'r.run_id')}" in value(client, "r.resume_hint")
        run(client, "import mlflow; info = mlflow.MlflowClient(r.tracking_uri).get_run(r.run_id)")
        assert value(client, "info.info.status") == "KILLED"
        run(client, "from aimodel_kernel.engine import checkpoints; from pathlib import Path\n"
                    "ck = checkpoints.read(Path(r.checkpoint))")
        assert value(client, "ck.epoch") == done - 1
        assert value(client, "all(torch.equal(v, ck.model[k]) "
                             "for k, v in slow.state_dict().items())") is True

        out = text_of(run(client, f"r2 = %train {LINE} --resume --quiet", timeout=300))
        assert "Error" not in out, out
        assert value(client, "r2.status") == "finished"
        assert value(client, "r2.run_id == r.run_id") is True
        assert value(client, "r2.epochs_completed") == 8
        # an uninterrupted run from the same start reaches the same weights, bit for bit
        run(client, "ref = Slow(copy.deepcopy(net)); ref.load_state_dict(start)\n"
                    f"r3 = %train ref {LINE.removeprefix('slow ')} --quiet --no-checkpoint",
            timeout=300)
        assert value(client, "r3.status") == "finished"
        assert value(client, "all(torch.equal(v, ref.state_dict()[k]) "
                             "for k, v in slow.state_dict().items())") is True
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
