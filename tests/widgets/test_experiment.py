"""The experiment panel, driven from Python as a person would click it: widget values, buttons.

A real in-process IPython, the real MLflow store of each test, real estimators and modules.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import all_runs, mlp, run_artifact
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from aimodel_kernel.display import view
from aimodel_kernel.widgets.experiment import NONE, ExperimentPanel

ipywidgets = pytest.importorskip("ipywidgets")


@pytest.fixture
def cancer_ns(ip, cancer):
    """Train/validation split of breast cancer in the notebook, plus things that do not fit."""
    X, y = cancer
    ip.user_ns.update(X=X[:400], y=y[:400], Xv=X[400:], yv=y[400:], one_row=X[:1],
                      flat=X[:, 0], text="hello", LogisticRegression=type(ip.user_ns["clf"]),
                      y_short=y[:50], helper=lambda: None)
    return ip


def runs_of(store, status=None):
    return [r for r in all_runs(store) if r.info.lifecycle_stage == "active"
            and (status is None or r.info.status == status)]


def wait_until(condition, timeout=60.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_dropdowns_list_only_suitable_objects(cancer_ns):
    panel = ExperimentPanel(cancer_ns, widget=True, background=False)
    assert list(panel.model_choice.options) == ["clf"]  # not the class, not a lambda
    assert list(panel.X_choice.options) == ["X", "Xv"]  # 2-D with >= 2 rows
    assert panel.X_choice.value == "X"
    assert list(panel.y_choice.options) == ["y"]  # 1-D and as long as X (400)
    panel.X_choice.value = "Xv"
    assert list(panel.y_choice.options) == ["yv"]
    assert list(panel.X_val_choice.options) == [NONE, "X", "Xv", "one_row"]
    panel.X_val_choice.value = "Xv"
    assert list(panel.y_val_choice.options) == ["yv"]
    cancer_ns.user_ns["clf2"] = type(cancer_ns.user_ns["clf"])()
    panel.refresh_button.click()  # new objects appear after Refresh; the choices are kept
    assert list(panel.model_choice.options) == ["clf", "clf2"]
    assert panel.model_choice.value == "clf" and panel.X_choice.value == "Xv"


def test_torch_modules_and_datasets_are_listed(ip, digits):
    torch = pytest.importorskip("torch")
    X, y = digits
    ds = torch.utils.data.TensorDataset(torch.tensor(X[:100]), torch.tensor(y[:100]))
    ip.user_ns.update(net=mlp(), Xt=torch.tensor(X), yt=torch.tensor(y), ds=ds)
    panel = ExperimentPanel(ip, widget=True, background=False)
    assert set(panel.model_choice.options) == {"clf", "net"}
    assert {"Xt", "ds"} <= set(panel.X_choice.options)
    panel.X_choice.value = "ds"
    assert list(panel.y_choice.options) == [NONE]  # a Dataset brings its own targets
    panel.X_choice.value = "Xt"
    assert "yt" in panel.y_choice.options and "y" not in panel.y_choice.options


def test_parameter_widgets_come_from_the_model(ip):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    panel = ExperimentPanel(ip, widget=True, background=False)
    inputs = panel.model_form.inputs
    assert isinstance(inputs["model.C"], ipywidgets.FloatText) and inputs["model.C"].value == 1.0
    assert isinstance(inputs["model.max_iter"], ipywidgets.IntText)
    assert isinstance(inputs["model.fit_intercept"], ipywidgets.Checkbox)
    assert isinstance(inputs["model.solver"], ipywidgets.Dropdown)
    assert {"lbfgs", "liblinear"} <= {v for _, v in inputs["model.solver"].options}
    assert isinstance(inputs["model.random_state"], ipywidgets.Text)  # None: a literal field
    assert set(panel.options_form.inputs) == {"train.seed", "train.val"}
    ip.user_ns["pipe"] = make_pipeline(StandardScaler(), type(ip.user_ns["clf"])())
    panel.refresh()
    panel.model_choice.value = "pipe"
    specs = panel.model_form.specs
    assert specs["model.logisticregression"].kind == "readonly"  # nested: shown, not edited
    assert "model.logisticregression" not in panel.model_form.inputs
    assert "model.logisticregression__C" in panel.model_form.inputs


def test_training_options_for_torch(ip):
    pytest.importorskip("torch")
    ip.user_ns["net"] = mlp()
    panel = ExperimentPanel(ip, widget=True, background=False)
    panel.model_choice.value = "net"
    assert panel.model_form is None
    inputs = panel.options_form.inputs
    assert isinstance(inputs["train.epochs"], ipywidgets.IntText)
    assert inputs["train.epochs"].value == 10
    assert isinstance(inputs["train.lr"], ipywidgets.FloatText)
    assert isinstance(inputs["train.optimizer"], ipywidgets.Dropdown)
    assert isinstance(inputs["train.deterministic"], ipywidgets.Checkbox)


def test_train_records_a_run_like_train(cancer_ns, store):
    from aimodel_kernel.magics.core import AimodelMagics
    from aimodel_kernel.magics.resolve import parse

    panel = ExperimentPanel(cancer_ns, widget=True, background=False)
    panel.X_val_choice.value, panel.y_val_choice.value = "Xv", "yv"
    panel.name_text.value = "cancer"
    panel.set(C=0.5, seed=3)
    panel.train_button.click()
    clf = cancer_ns.user_ns["clf"]
    assert panel.error is None and clf.C == 0.5 and hasattr(clf, "coef_")  # trained in place
    (run,) = runs_of(store, "FINISHED")
    line = "%train clf X y --val-data Xv yv --name cancer --seed 3"
    assert run.data.tags["aimodel.magic"] == line
    assert run.data.params["model.C"] == "0.5" and run.data.tags["aimodel.seed"] == "3"
    cell = run_artifact(store, run.info.run_id, "source/cell.py").read_text()
    assert cell == "clf.set_params(C=0.5)\n" + line
    parsed = parse(AimodelMagics.train, line[len("%train "):])  # a line %train accepts
    assert (parsed.model, parsed.X, parsed.y, parsed.seed) == ("clf", "X", "y", 3)
    assert run.data.tags["aimodel.version"] == "1"
    assert "eval.accuracy" in run.data.metrics  # the evaluation on the validation data
    kinds = [next(k for k in o["data"] if k.startswith("application/vnd.aimodel"))
             for o in panel.output.outputs]
    assert kinds == ["application/vnd.aimodel.train.v1+json",
                     "application/vnd.aimodel.evaluation.v1+json"]
    assert "cancer/1" in panel.message
    assert not panel.train_button.disabled and panel.stop_button.disabled
    bundle = panel.static_bundle()
    assert "<table>" in bundle["text/html"] and "image/png" in bundle["text/html"]
    assert bundle["image/png"] and "Fitted LogisticRegression" in bundle["text/plain"]


def test_bad_input_is_reported_and_changes_nothing(cancer_ns, store):
    clf = cancer_ns.user_ns["clf"]
    panel = ExperimentPanel(cancer_ns, widget=True, background=False)
    panel.X_val_choice.value, panel.y_val_choice.value = "Xv", "yv"
    panel.set(val=0.2)
    panel.train_button.click()  # both a fraction and validation data
    assert "not both" in panel.message and not runs_of(store)
    panel.set(val=0.0, C=-1.0)
    panel.train_button.click()  # refused by the estimator's own check, inside fit
    assert "LogisticRegression.fit refused" in panel.message
    assert clf.C == 1.0 and not hasattr(clf, "coef_")  # the parameter was put back
    assert not runs_of(store)  # the run was discarded (MLflow's deleted runs)
    assert not panel.running and not panel.train_button.disabled


def test_stop_works_while_training_runs_in_the_background(ip, digits, store):
    pytest.importorskip("torch")
    X, y = digits
    net = mlp()
    ip.user_ns.update(net=net, Xd=X, yd=y)
    panel = ExperimentPanel(ip, widget=True, background=True)
    panel.model_choice.value, panel.X_choice.value = "net", "Xd"
    panel.set(epochs=500, batch_size=16, seed=0)
    started = time.monotonic()
    panel.train_button.click()  # returns at once: the kernel could take the next message
    assert time.monotonic() - started < 5 and panel.running
    assert panel.train_button.disabled and not panel.stop_button.disabled
    wait_until(lambda: runs_of(store, "RUNNING") and panel.progress_box.children)
    time.sleep(0.3)
    panel.stop_button.click()  # a click handled while the training thread runs
    assert panel.wait(timeout=60)
    (run,) = runs_of(store)
    assert run.info.status == "KILLED" and "Interrupted" in panel.message
    assert time.monotonic() - started < 120  # far from 500 epochs
    assert not panel.train_button.disabled and panel.stop_button.disabled
    assert isinstance(panel.progress_box.children[0], ipywidgets.HTML)  # progress summary left


def test_display_keeps_a_static_summary_and_done_replaces_the_widget(cancer_ns):
    panel = ExperimentPanel(cancer_ns, widget=True, background=False)
    with capture_output() as shown:
        panel._ipython_display_()
    first = shown.outputs[0]
    assert "application/vnd.jupyter.widget-view+json" in first.data
    assert "nothing trained yet" in first.data["text/html"]
    panel.train_button.click()
    with capture_output() as shown:
        panel.close()  # Done
    (update,) = shown.outputs
    assert update.update and update.transient["display_id"] == first.transient["display_id"]
    assert "application/vnd.jupyter.widget-view+json" not in update.data
    assert "Fitted LogisticRegression" in update.data["text/html"]
    payload = update.data["application/vnd.aimodel.train.v1+json"]
    view.validate(payload)
    assert panel.train_button.comm is None and panel.view.comm is None  # widgets closed


def test_text_view_without_a_widget_frontend(cancer_ns):
    panel = ExperimentPanel(cancer_ns)  # a plain shell: no frontend, no thread
    assert not panel.use_widget and not panel.background
    text = repr(panel)
    assert "no widget frontend" in text and "model: clf" in text and "C=1.0" in text
    with capture_output() as shown:
        panel.set(C=2.0).train()
    assert "Fitted LogisticRegression" in shown.outputs[0].data["text/plain"]
    assert "last: Fitted LogisticRegression" in repr(panel)


def test_the_magic_preselects_and_refuses_what_does_not_fit(cancer_ns):
    panel = cancer_ns.run_line_magic("experiment", "clf Xv yv --val-data X y --name c --sweep")
    assert isinstance(panel, ExperimentPanel)
    assert (panel.model_choice.value, panel.X_choice.value, panel.y_choice.value) == (
        "clf", "Xv", "yv")
    assert (panel.X_val_choice.value, panel.y_val_choice.value) == ("X", "y")
    assert panel.name_text.value == "c" and panel.sweep_mode.value
    assert panel.model_form.sweeps["model.C"].layout.display == ""  # sweep fields shown
    with pytest.raises(UsageError, match="'X' is not a scikit-learn estimator"):
        cancer_ns.run_line_magic("experiment", "X")
    with pytest.raises(UsageError, match="y 'y_short' does not fit"):
        cancer_ns.run_line_magic("experiment", "clf X y_short")
    with pytest.raises(UsageError, match="'nope' is not defined"):
        cancer_ns.run_line_magic("experiment", "nope")
    with pytest.raises(UsageError, match="needs its targets"):
        cancer_ns.run_line_magic("experiment", "clf X y --val-data Xv")
    assert np.shape(cancer_ns.user_ns["X"]) == (400, 30)


# -- in a real kernel: clicks arrive as comm messages while training runs ----------------------
KERNEL_SETUP = """
%load_ext aimodel_kernel
import json, torch
from torch import nn
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
p = %experiment net X y
p.set(epochs=3000, batch_size=16, seed=0)
display(p)
print(json.dumps({"train": p.train_button.model_id, "stop": p.stop_button.model_id,
                  "widget": p.use_widget, "background": p.background}))
"""


def _kernel_run(client, code, timeout=180):
    msg_id = client.execute(code)
    messages, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=timeout)
        messages.append(msg)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"):
            return messages
    raise AssertionError(f"no reply to {code!r}")


def _printed(messages):
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")


def _click(client, model_id):
    """What JupyterLab sends when a Button is clicked."""
    msg = client.session.msg("comm_msg", {"comm_id": model_id, "data": {
        "method": "custom", "content": {"event": "click"}}})
    client.shell_channel.send(msg)


@pytest.mark.slow
def test_stop_click_reaches_a_kernel_that_is_training(tmp_path):
    import json

    from conftest import subprocess_env
    from jupyter_client.manager import start_new_kernel

    km, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path),
                                  env=subprocess_env(AIMODEL_HOME=str(tmp_path / ".aimodel")))
    try:
        shown = _kernel_run(client, KERNEL_SETUP)
        ids = json.loads(_printed(shown).strip().splitlines()[-1])
        assert ids["widget"] and ids["background"]
        display_id = next(m["content"]["transient"]["display_id"] for m in shown
                          if m["msg_type"] == "display_data")
        started = time.monotonic()
        _click(client, ids["train"])
        progress = []
        while not progress:  # the training thread updates the progress bar over IOPub
            msg = client.get_iopub_msg(timeout=120)
            state = msg["content"].get("data", {}).get("state", {})
            if msg["msg_type"] == "comm_msg" and isinstance(state.get("value"), float):
                progress.append(state["value"])
        # the main thread is free: a cell runs while the panel trains
        busy = _printed(_kernel_run(client, "print(p.running, p.stop_flag.is_set())"))
        assert busy.split() == ["True", "False"]
        _click(client, ids["stop"])
        done = _kernel_run(client, "print(json.dumps([p.wait(120), p.message]))")
        finished, message = json.loads(_printed(done).strip().splitlines()[-1])
        assert finished and message.startswith("Interrupted Sequential")
        assert time.monotonic() - started < 100  # 3000 epochs would take far longer
        updates = [m for m in shown + done if m["msg_type"] == "update_display_data"]
        seen = updates or [m for m in _kernel_run(client, "pass")
                           if m["msg_type"] == "update_display_data"]
        assert any(m["content"]["transient"]["display_id"] == display_id
                   and "Interrupted" in m["content"]["data"]["text/html"] for m in seen)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_bert_on_a_dict_of_token_ids_is_listed_and_trained_from_the_panel(ip, store):
    """Models that take a dict of inputs are offered their dict X (and its targets), and the
    panel trains them as %train does."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from token_models import labels_for, tiny_bert, token_batch

    enc, y = token_batch(40), labels_for(40, classes=2)
    ragged = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"][:10]}
    ip.user_ns.update(bert=tiny_bert(num_labels=2).train(), enc=enc, y_enc=y, ragged=ragged,
                      pair=(torch.zeros(40, 3), torch.zeros(40, dtype=torch.long)))
    panel = ExperimentPanel(ip, widget=True, background=False)
    assert {"enc", "pair"} <= set(panel.X_choice.options)
    assert "ragged" not in panel.X_choice.options  # leaves of different lengths: not an X
    panel.model_choice.value, panel.X_choice.value = "bert", "enc"
    assert list(panel.y_choice.options) == ["y_enc"]
    panel.set(epochs=1, batch_size=8, seed=0)
    panel.train()
    (run,) = runs_of(store)
    assert run.info.status == "FINISHED" and run.data.params["train.epochs"] == "1"
