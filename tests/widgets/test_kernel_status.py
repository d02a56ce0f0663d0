"""The training status comm the lab's status bar listens to, in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel
from kernel_client import run

from aimodel_kernel.widgets.kernel_status import TARGET, StatusChannel

SETUP = """
%load_ext aimodel_kernel
import torch
from torch import nn
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
"""


def status_messages(messages: list[dict]) -> list[tuple[str, dict]]:
    """(message type, status dict) of the ``aimodel.status`` comm's messages, in order."""
    ours: set[str] = set()
    out = []
    for m in messages:
        content = m["content"]
        if m["msg_type"] == "comm_open" and content["target_name"] == TARGET:
            ours.add(content["comm_id"])
            out.append(("open", content["data"]))
        elif m["msg_type"] in ("comm_msg", "comm_close") and content["comm_id"] in ours:
            out.append((m["msg_type"], content["data"]))
    return out


@pytest.mark.slow
def test_train_pushes_start_progress_end_over_one_comm(tmp_path: Path) -> None:
    km, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        run(client, SETUP)
        got = status_messages(run(client, "%train net X y --epochs 4 --name digits --quiet"))
        assert [(k, d.get("event")) for k, d in got] == [("open", "end"), ("comm_close", None)]
        got = status_messages(run(client, "%train net X y --epochs 4 --name digits"))
        kinds = [kind for kind, _ in got]
        assert kinds[0] == "open" and kinds[-1] == "comm_close" and "comm_msg" in kinds
        data = [d for _, d in got if d]
        assert data[0]["event"] == "start" and data[0]["run"] == "digits"
        assert data[0]["epochs"] == 4 and data[0]["status"] == "RUNNING"
        end = data[-1]
        assert end["event"] == "end" and end["status"] == "finished"
        assert end["epoch"] == 4 and end["fraction"] == 1.0
        assert "epoch 4/4" in end["line"]
        fractions = [d["fraction"] for d in data]
        assert fractions == sorted(fractions)
        # a scikit-learn fit has no live progress: one "end" announces it
        got = status_messages(run(client, "clf = LogisticRegression(max_iter=200)\n"
                                          "%train clf X y --name lr"))
        assert [k for k, _ in got] == ["open", "comm_close"]
        assert got[0][1]["event"] == "end" and got[0][1]["run"] == "lr"
        assert got[0][1]["status"] == "FINISHED"
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def test_outside_a_kernel_the_channel_does_nothing() -> None:
    channel = StatusChannel("x")
    channel.start(0, 3)
    channel.progress(1, 3, 0.3, 2.0, "epoch 1/3")
    channel.end(3, 3, 1.0, "done", "finished")
    channel.announce("done", "FINISHED")
    assert channel._comm is None
