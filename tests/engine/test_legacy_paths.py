"""Files written before the engine moved into capability packages still load (one release).

``tests/fixtures/legacy/`` holds a skops file and an ``--export-script`` job written by the
flat layout (see its README); they name the old module paths.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import subprocess_env

from aimodel_kernel.engine.fairness.mitigated_models import GroupThresholdClassifier
from aimodel_kernel.engine.legacy import MOVED
from aimodel_kernel.engine.store.registry import load_version
from aimodel_kernel.engine.store.serialize import load_model

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def test_every_old_module_path_imports_and_forwards_to_its_new_module():
    for old, new in MOVED.items():
        module = importlib.import_module(f"aimodel_kernel.engine.{old}")
        assert module.__moved_to__ == f"aimodel_kernel.engine.{new}"
        real = importlib.import_module(f"aimodel_kernel.engine.{new}")
        public = [n for n in vars(real) if not n.startswith("_")]
        assert public and all(getattr(module, n) is getattr(real, n) for n in public), old


def test_packages_that_were_modules_forward_the_old_names():
    from aimodel_kernel.engine.evaluation import evaluate  # was engine/evaluation.py
    from aimodel_kernel.engine.fairness import FairnessResult, audit  # was engine/fairness.py
    from aimodel_kernel.engine.training import TrainResult, train  # was engine/training.py
    from aimodel_kernel.engine.versions import load_version, parse_ref  # was engine/versions.py

    assert train.__module__ == "aimodel_kernel.engine.training.entry"
    assert TrainResult.__module__ == "aimodel_kernel.engine.training.result"
    assert evaluate.__module__ == "aimodel_kernel.engine.evaluation.metrics"
    assert audit.__module__ == FairnessResult.__module__ == "aimodel_kernel.engine.fairness.audits"
    assert load_version.__module__ == parse_ref.__module__ == "aimodel_kernel.engine.store.registry"


def test_the_public_api_names_what_the_magics_call():
    import aimodel_kernel.engine as engine

    for name in ("train", "evaluate", "explain", "audit", "mitigate", "compress",
                 "diff_versions", "reproduce", "load_version", "TrainConfig"):
        assert name in engine.__all__ and callable(getattr(engine, name)), name
    assert engine.train.__module__ == "aimodel_kernel.engine.training.entry"


def test_a_skops_file_naming_the_old_module_path_loads(tmp_path):
    skops = (LEGACY / "mitigated_model" / "model.skops").read_bytes()
    assert b"aimodel_kernel.engine.fair_models" in skops  # the fixture is what it says
    expected = json.loads((LEGACY / "mitigated_expected.json").read_text())
    model = load_model(LEGACY / "mitigated_model", expected["checksums"])
    assert isinstance(model, GroupThresholdClassifier)
    rows = pd.read_csv(LEGACY / "mitigated_rows.csv")
    rows["group"] = rows["group"].astype(int)
    assert np.array_equal(model.predict(rows), np.asarray(expected["predictions"]))


def test_a_script_exported_before_the_move_trains_and_records(store, tmp_path):
    script = tmp_path / "legacy_train.py"
    text = (LEGACY / "legacy_train.py").read_text()
    assert "from aimodel_kernel.engine.dist_worker import run_job" in text
    text = re.sub(r"^STORE_HOME = .*$", f"STORE_HOME = {str(store.home)!r}", text, flags=re.M)
    script.write_text(text)
    shutil.copyfile(LEGACY / "legacy_train.job.pkl", tmp_path / "legacy_train.job.pkl")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env=subprocess_env(MLFLOW_TRACKING_URI=store.uri))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "registered legacy-mlp/1" in done.stdout
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    trained = load_version("legacy-mlp/1", into=net)
    assert trained(torch.zeros(3, 4)).shape == (3, 2)
