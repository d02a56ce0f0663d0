"""Live training progress: throttled text lines, and throttled ipywidgets updates."""

from __future__ import annotations

import io
import time

import pytest
from conftest import mlp

from aimodel_kernel.engine.core.events import BatchEnd, EpochEnd, RunStarted, TrainingEnd
from aimodel_kernel.engine.core.options import TrainConfig
from aimodel_kernel.engine.training.entry import train
from aimodel_kernel.widgets.progress import TrainingProgress, format_eta, sparkline_svg


def test_text_progress_during_real_training(store, digits):
    pytest.importorskip("torch")
    X, y = digits
    stream = io.StringIO()
    progress = TrainingProgress(widget=False, stream=stream, interval=0.2, title="digits")
    assert progress.use_widget is False
    start = time.perf_counter()
    train(mlp(), X[:400], y[:400], TrainConfig(epochs=40, batch_size=16, val=0.2, seed=0,
                                               checkpoint=False, export=False),
          on_event=progress)
    elapsed = time.perf_counter() - start
    lines = stream.getvalue().splitlines()
    # at most one line per max(interval, 2 s) of training, plus the last epoch and the summary
    assert 2 <= len(lines) <= int(elapsed / 2.0) + 2
    assert progress.updates == len(lines) - 1
    assert lines[-2].startswith("epoch 40/40") and "val_accuracy" in lines[-2]
    assert lines[-1].startswith("digits: finished — epoch 40/40")


def test_text_progress_throttles_a_flood_of_events():
    stream = io.StringIO()
    progress = TrainingProgress(widget=False, stream=stream, interval=0.0)
    start = time.perf_counter()
    progress(RunStarted(None, epochs=50, batches_per_epoch=400))
    for epoch in range(49):
        for batch in range(400):
            progress(BatchEnd(epoch, batch, (batch + 1) * 8))
        progress(EpochEnd(epoch + 1, {"loss": 1.0 / (epoch + 1)}, 0.01, 800.0))
    elapsed = time.perf_counter() - start
    assert progress.updates <= int(elapsed / 2.0) + 1
    assert len(stream.getvalue().splitlines()) == progress.updates
    assert progress.curves["loss"][-1] == pytest.approx(1 / 49)


def test_widget_progress_is_throttled(_shell, capsys):
    ipywidgets = pytest.importorskip("ipywidgets")
    progress = TrainingProgress(widget=True, interval=0.2, title="net")
    progress(RunStarted("run", epochs=2, batches_per_epoch=5000))
    assert isinstance(progress._view, ipywidgets.VBox)
    assert isinstance(progress._bar, ipywidgets.FloatProgress)
    start = time.perf_counter()
    for i in range(10_000):
        progress(BatchEnd(i // 5000, i % 5000, (i % 5000 + 1) * 32, None))
    elapsed = time.perf_counter() - start
    assert progress.updates <= int(elapsed / 0.2) + 1 < 10_000
    progress(EpochEnd(1, {"loss": 0.9, "val_loss": 1.0, "val_accuracy": 0.5}, 1.0, 100.0))
    progress(EpochEnd(2, {"loss": 0.5, "val_loss": 0.7, "val_accuracy": 0.8}, 1.0, 100.0))
    assert progress._bar.value == 1.0
    assert "epoch 2/2" in progress._label.value and "val_accuracy 0.8" in progress._label.value
    assert "<polyline" in progress._curve.value
    progress(TrainingEnd("finished", 2))
    assert progress._view.comm is None  # the live view is closed, a static summary replaces it
    assert "VBox" in capsys.readouterr().out  # plain shell: the text fallback was displayed


def test_default_view_outside_a_kernel(_shell):
    assert TrainingProgress().use_widget is False  # a plain InteractiveShell has no frontend


def test_status_line_and_helpers():
    progress = TrainingProgress(widget=False, stream=io.StringIO())
    progress(RunStarted(None, epochs=4, batches_per_epoch=10))
    progress(EpochEnd(1, {"loss": 0.5, "samples_per_second": 1234.0}, 1.0, 1234.0))
    progress.batch = 5
    line = progress.status_line(progress._t0 + 3.0)
    assert line.startswith("epoch 2/4  batch 5/10  loss 0.5  1,234 samples/s")
    assert "elapsed 0:03" in line and "ETA 0:05" in line
    assert format_eta(3725) == "1:02:05" and format_eta(float("nan")) == "?"
    assert sparkline_svg({"loss": []}) == ""
    assert sparkline_svg({"loss": [1.0, 0.5], "val_loss": [1.2, 0.9]}).count("<polyline") == 2
