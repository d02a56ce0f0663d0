"""The panel's training-option widgets follow from the ``%train`` flags table (no widget needed)."""

from __future__ import annotations

from aimodel_kernel.engine.core.options import (
    DEVICES,
    FLAG_OF,
    LOSSES,
    MONITORS,
    OPTIMIZERS,
    TrainConfig,
)
from aimodel_kernel.widgets.params import SKLEARN_OPTIONS, TORCH_OPTIONS, training_specs


def test_torch_options_kinds_and_choices():
    specs = {s.label: (s.kind, s.choices) for s in training_specs("torch")}
    assert specs == {
        "epochs": ("int", ()), "batch_size": ("int", ()), "lr": ("float", ()),
        "weight_decay": ("float", ()), "optimizer": ("choice", OPTIMIZERS),
        "momentum": ("float", ()), "loss": ("choice", LOSSES), "seed": ("any", ()),
        "val": ("float", ()), "early_stop": ("any", ()), "monitor": ("choice", MONITORS),
        "class_weight": ("choice", (None, "balanced")), "deterministic": ("bool", ()),
        "device": ("choice", DEVICES),
    }
    assert [s.label for s in training_specs("torch")] == list(TORCH_OPTIONS)  # shown in order
    defaults = TrainConfig().to_dict()
    assert all(s.default == defaults[s.label] and s.key == f"train.{s.label}"
               for s in training_specs("torch"))


def test_sklearn_gets_the_options_that_apply_to_estimators():
    assert [s.label for s in training_specs("sklearn")] == list(SKLEARN_OPTIONS)
    assert not any(FLAG_OF[n].torch_only for n in SKLEARN_OPTIONS)
    assert set(TORCH_OPTIONS) <= set(FLAG_OF)
