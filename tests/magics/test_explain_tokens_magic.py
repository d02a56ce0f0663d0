"""``%explain`` of token and image models in a real in-process IPython: ``--tokenizer`` and
``--steps``, logging onto the ``%train`` run, and bad input as a ``UsageError`` that logs
nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_artifact
from IPython.core.error import UsageError

from aimodel_kernel.display.attribution_report import ImageExplainReport, TokenExplainReport
from aimodel_kernel.engine.explanation.record import metric_name
from aimodel_kernel.engine.store.tracking import get_store

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
from torch import nn  # noqa: E402


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(12, 8)
        self.gru = nn.GRU(8, 8, batch_first=True)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        h, _ = self.gru(self.emb(x))
        return self.out(h[:, -1])


class Words:
    """A minimal tokenizer: ``convert_ids_to_tokens`` is all ``--tokenizer`` needs."""

    def convert_ids_to_tokens(self, ids):
        return [f"w{i}" if i != 3 else "<b>" for i in ids]


@pytest.fixture
def nb(ip):
    rng = np.random.default_rng(0)
    Xi = torch.from_numpy(rng.integers(0, 12, (40, 6)))
    torch.manual_seed(0)
    ip.user_ns.update(net=Tokens(), Xi=Xi, yi=(Xi == 3).any(1).long().numpy(), tok=Words(),
                      images=torch.randn(5, 1, 8, 8),
                      cnn=nn.Sequential(nn.Flatten(), nn.Linear(64, 3)))
    return ip


def test_token_explanation_with_a_tokenizer_logs_onto_the_run(nb):
    nb.run_cell("%train net Xi yi --epochs 2 --quiet --name tokens").raise_error()
    r = nb.run_line_magic("explain", "net Xi --tokenizer tok --steps 4 --top 3")
    assert isinstance(r, TokenExplainReport) and r.logged and r.n_steps == 4
    assert r.tokens[0] == [f"w{i}" if i != 3 else "<b>" for i in nb.user_ns["Xi"][0].tolist()]
    assert "&lt;b&gt;" in r._repr_mimebundle_()["text/html"]
    store = get_store()
    doc = json.loads(run_artifact(store, r.run_id, "explain/importance.json").read_text())
    assert doc["method"] == "captum.LayerIntegratedGradients"
    assert doc["features"] == list(r.importance)
    metrics = store.run(r.run_id).data.metrics
    assert metrics["explain.rows"] == 40 and metrics["explain.max_delta"] == pytest.approx(
        r.max_delta)
    for token, value in r.top_features():  # "<b>" is logged as "explain.importance._b_"
        assert metrics[metric_name(token)] == pytest.approx(value)
    assert metric_name("<b>") == "explain.importance._b_"
    png = run_artifact(store, r.run_id, "explain/plots.png").read_bytes()
    assert png == r.png()


def test_bad_input_is_a_usage_error_and_logs_nothing(nb):
    nb.run_cell("%train net Xi yi --epochs 1 --quiet --name tokens").raise_error()
    store = get_store()
    from aimodel_kernel.engine.store.registry import resolve

    run_id = resolve("tokens/1").run_id
    for line, message in (
        ("net Xi --tokenizer yi", "--tokenizer yi is a ndarray, not a tokenizer"),
        ("net Xi --method permutation", "--method permutation does not apply to tokens inputs"),
        ("net Xi --steps 1", "--steps must be a whole number from 2 to 10000"),
        ("net Xi --tokenizer nothing", "tokenizer 'nothing' is not defined in the notebook"),
        ("cnn images --tokenizer tok", "--tokenizer applies to token ids"),
    ):
        with pytest.raises(UsageError, match=message):
            nb.run_line_magic("explain", line)
    assert store.artifact(run_id, "explain/importance.json") is None
    assert not any(k.startswith("explain.") for k in store.run(run_id).data.metrics)


def test_image_explanation_in_the_cell(nb):
    r = nb.run_line_magic("explain", "cnn images --steps 8 --row 2")
    assert isinstance(r, ImageExplainReport) and r.scope == "local" and not r.logged
    assert r.heatmaps.shape == (1, 8, 8)
    bundle = r._repr_mimebundle_()
    assert bundle["image/png"] and "application/vnd.aimodel.explain.v1+json" in bundle
    assert bundle["text/plain"].startswith("row 2: cnn predicts")
