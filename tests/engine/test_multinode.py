"""Several nodes: two kernels on 127.0.0.1 meet in a real c10d rendezvous (gloo, 1 process each)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import all_runs, subprocess_env
from safetensors.torch import load_file
from torch import nn

from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.distributed.nodes import WORKER_NODE_NOTE
from aimodel_kernel.engine.training.entry import train

NODE = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from safetensors.torch import save_file
    from torch import nn
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train

    data, rank, rdzv, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    d = np.load(data)
    torch.manual_seed(100 + rank)  # different initial weights: DDP starts from rank 0's
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    config = TrainConfig(epochs=1, batch_size=64, lr=1e-2, seed=7, nodes=2, node_rank=rank,
                         rdzv=rdzv, name="digits-nodes", export=False, checkpoint=False)
    r = train(model, d["X"], d["y"], config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out + ".safetensors")
    json.dump({"run_id": r.run_id, "version": r.version, "notes": r.notes,
               "status": r.status, "world": r.metrics.get("world_size")}, open(out + ".json", "w"))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_nodes(script: str, data, tmp_path, template_db) -> list:
    """Start two loopback "nodes" (each its own store) running ``script`` on ``data``; wait
    for both and return their homes. A node that fails fails the test with both outputs."""
    rdzv = f"127.0.0.1:{free_port()}"
    procs, homes = [], []
    for rank in (0, 1):
        home = tmp_path / f"node{rank}" / ".aimodel"
        home.mkdir(parents=True)
        shutil.copyfile(template_db, home / "mlflow.db")
        homes.append(home)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", script, str(data), str(rank), rdzv,
             str(tmp_path / f"n{rank}")], cwd=home.parent,
            env=subprocess_env(AIMODEL_HOME=str(home)), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT))
    try:
        outputs = [p.communicate(timeout=300)[0].decode(errors="replace") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    return homes


def node_store(home):
    from aimodel_kernel.config import Settings
    from aimodel_kernel.engine.store.tracking import get_store

    return get_store(Settings(home=str(home)))


@pytest.mark.slow
def test_two_nodes_train_one_model_and_only_global_rank_0_records_it(tmp_path, template_db,
                                                                      digits):
    X, y = digits
    data = tmp_path / "digits.npz"
    np.savez(data, X=X[:640], y=y[:640])
    homes = run_nodes(NODE, data, tmp_path, template_db)

    reports = [json.loads((tmp_path / f"n{r}.json").read_text()) for r in (0, 1)]
    assert all(r["status"] == "finished" and r["world"] == 2.0 for r in reports)
    recorder = [i for i, r in enumerate(reports) if r["run_id"]]
    assert len(recorder) == 1  # the node that hosted global rank 0 (the rendezvous decides)
    worker = 1 - recorder[0]
    assert reports[recorder[0]]["version"] == 1
    assert reports[worker]["version"] is None and WORKER_NODE_NOTE in reports[worker]["notes"]

    stores = [node_store(h) for h in homes]
    versions = [stores[i].client.search_model_versions("name='digits-nodes'") for i in (0, 1)]
    assert [len(v) for v in versions] == [int(i == recorder[0]) for i in (0, 1)]
    assert versions[recorder[0]][0].run_id == reports[recorder[0]]["run_id"]
    assert not stores[worker].search_runs("")  # nothing active on the worker node's store

    a, b = (load_file(str(tmp_path / f"n{r}.safetensors")) for r in (0, 1))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(100)
    initial = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).state_dict()
    assert not torch.equal(initial["0.weight"], a["0.weight"])  # it did train


def test_a_rendezvous_port_already_in_use_is_refused_before_any_run(store, digits):
    X, y = digits
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = TrainConfig(epochs=1, seed=1, nodes=2, node_rank=0, rdzv=f"127.0.0.1:{port}")
        with pytest.raises(InputError, match=f"port {port} is already in use on 127.0.0.1"):
            train(nn.Linear(64, 10), X[:200], y[:200], config)
    assert all_runs(store) == []


def test_node_0_must_run_on_the_rendezvous_host(store, digits):
    X, y = digits
    config = TrainConfig(epochs=1, seed=1, nodes=2, rdzv=f"192.0.2.1:{free_port()}")
    with pytest.raises(InputError, match=r"must run on 192\.0\.2\.1"):
        train(nn.Linear(64, 10), X[:200], y[:200], config)
    assert all_runs(store) == []


@pytest.mark.parametrize(("options", "message"), [
    ({"nodes": 0}, "--nodes must be a positive integer"),
    ({"nodes": 2, "rdzv": "127.0.0.1:29400", "node_rank": 2}, r"--node-rank must be in 0\.\.1"),
    ({"nodes": 2, "rdzv": "127.0.0.1:29400", "node_rank": -1}, r"--node-rank must be in 0\.\.1"),
    ({"nodes": 2}, "needs --rdzv HOST:PORT"),
    ({"nodes": 2, "rdzv": "127.0.0.1"}, "--rdzv must be HOST:PORT"),
    ({"nodes": 2, "rdzv": "127.0.0.1:99999"}, "--rdzv must be HOST:PORT"),
    ({"nodes": 2, "rdzv": ":29400"}, "--rdzv must be HOST:PORT"),
    ({"rdzv": "127.0.0.1:29400"}, "need --nodes 2 or more"),
    ({"node_rank": 1}, "need --nodes 2 or more"),
])
def test_bad_node_options_name_the_flag(options, message):
    with pytest.raises(InputError, match=message):
        TrainConfig(seed=1, **options)


def test_several_nodes_need_a_shared_seed():
    with pytest.raises(InputError, match="needs --seed"):
        TrainConfig(nodes=2, rdzv="127.0.0.1:29400")


def test_train_magic_passes_the_node_flags_and_reports_a_taken_port(ip, store):
    from IPython.core.error import UsageError

    ip.user_ns["net"] = nn.Linear(30, 2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} is already in use"):
            ip.run_line_magic("train", f"net X y --seed 1 --nodes 2 --node-rank 0 "
                                       f"--rdzv 127.0.0.1:{port} --rdzv-id demo --quiet")
    with pytest.raises(UsageError, match=r"--node-rank must be in 0\.\.1"):
        ip.run_line_magic("train", "net X y --seed 1 --nodes 2 --node-rank 2 --rdzv h:1")
    with pytest.raises(UsageError, match="--nodes applies to PyTorch models"):
        ip.run_line_magic("train", "clf X y --nodes 2")
    assert all_runs(store) == []


NODE_BERT = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertForSequenceClassification
    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.training.entry import train

    data, rank, rdzv, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    d = np.load(data)
    X = {"input_ids": torch.from_numpy(d["ids"]), "attention_mask": torch.from_numpy(d["mask"])}
    torch.manual_seed(100 + rank)  # different initial weights: DDP starts from rank 0's
    model = BertForSequenceClassification(BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, num_labels=2, max_position_embeddings=64))
    config = TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=7, nodes=2, node_rank=rank,
                         rdzv=rdzv, name="bert-nodes", export=False, checkpoint=False)
    r = train(model, X, d["y"], config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out + ".safetensors")
    json.dump({"run_id": r.run_id, "version": r.version, "status": r.status,
               "world": r.metrics.get("world_size")}, open(out + ".json", "w"))
""")


@pytest.mark.slow
def test_two_nodes_train_a_bert_on_dict_batches(tmp_path, template_db):
    """Nested inputs under --nodes: both nodes derive the same rendezvous id from a dict X,
    shard it alike and end with the same weights; one version is recorded."""
    pytest.importorskip("transformers")
    from token_models import labels_for, token_batch

    X, y = token_batch(64), labels_for(64, classes=2)
    data = tmp_path / "tokens.npz"
    np.savez(data, ids=X["input_ids"].numpy(), mask=X["attention_mask"].numpy(), y=y)
    run_nodes(NODE_BERT, data, tmp_path, template_db)
    reports = [json.loads((tmp_path / f"n{r}.json").read_text()) for r in (0, 1)]
    assert all(r["status"] == "finished" and r["world"] == 2.0 for r in reports)
    assert sorted(r["version"] or 0 for r in reports) == [0, 1]
    a, b = (load_file(str(tmp_path / f"n{r}.safetensors")) for r in (0, 1))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
