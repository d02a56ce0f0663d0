"""The glue the magics share: one base class, flags defined once, choices from the engine, and
one TrainConfig <-> ``%train`` flags table (``engine/options.py: FLAGS``)."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

from aimodel_kernel.engine.core import options
from aimodel_kernel.engine.core.options import (
    FLAG_OF,
    FLAGS,
    TrainConfig,
    config_from_flags,
    flags_for,
    options_from_flags,
    torch_only_flags,
)
from aimodel_kernel.magics import MAGICS
from aimodel_kernel.magics.base import AimodelMagicsBase
from aimodel_kernel.magics.core import AimodelMagics
from aimodel_kernel.magics.resolve import parse

MAGICS_DIR = Path(__file__).resolve().parents[2] / "aimodel_kernel" / "magics"
NOT_OPTIONS = {"model", "X", "y", "val_data", "quiet", "help"}  # %train flags of no TrainConfig
# field: the positionals, validation data passed beside the config, and no live progress


def _actions(magic) -> dict[str, argparse.Action]:
    return {a.dest: a for a in magic.parser._actions}


def _parsed_config(line: str) -> TrainConfig:
    assert line.startswith("%train ")
    return config_from_flags(vars(parse(AimodelMagics.train, line[len("%train "):])))


# -- one table ----------------------------------------------------------------------------------
def test_every_trainconfig_field_has_a_train_flag_and_every_flag_a_field():
    assert set(FLAG_OF) == set(TrainConfig.field_names())
    assert len(FLAGS) == len(FLAG_OF)
    actions = _actions(AimodelMagics.train)
    assert set(actions) - NOT_OPTIONS == {f.dest for f in FLAGS}
    for flag in FLAGS:
        action = actions[flag.dest]
        assert action.option_strings == [flag.flag], flag
        if flag.kind in ("switch", "off"):
            assert isinstance(action, argparse._StoreTrueAction), flag
        elif flag.kind == "choice":
            assert action.choices is flag.choices, flag  # the engine's tuple, not a copy
        else:
            assert action.type is flag.value_type and action.choices is None, flag
        assert action.default is None or flag.kind in ("switch", "off"), flag


def test_torch_only_flags_are_the_ones_refused_for_an_estimator():
    torch_only = [f.dest for f in FLAGS if f.torch_only]
    assert torch_only == [  # the order the error names the first of several
        "epochs", "batch_size", "lr", "weight_decay", "optimizer", "momentum", "loss", "device",
        "early_stop", "monitor", "resume", "checkpoint_every", "devices", "backend",
        "nodes", "node_rank", "rdzv", "rdzv_id", "export_script", "lr_schedule", "warmup",
        "from", "freeze", "unfreeze_after", "lr_head", "lora", "lora_alpha", "lora_targets",
        "merge", "precision", "grad_accum", "strategy", "blocks", "no_reshard_after_forward",
        "cpu_offload", "activation_checkpointing", "compile", "eager_fallback"]
    values = vars(parse(AimodelMagics.train, "clf X y --seed 1 --lr 0.1 --epochs 2"))
    assert torch_only_flags(values) == ["--epochs", "--lr"]
    assert torch_only_flags(vars(parse(AimodelMagics.train, "clf X y --no-checkpoint"))) == []


def test_train_refuses_a_torch_flag_for_an_estimator(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=r"^--lr applies to PyTorch models; LogisticRegression"):
        ip.run_line_magic("train", "clf X y --lr 0.1 --devices 2")


def test_options_from_flags_keeps_only_what_was_given():
    args = vars(parse(AimodelMagics.train, "net X y --epochs 3 --no-export --quiet"))
    assert options_from_flags(args) == {"epochs": 3, "export": False, "deterministic": False,
                                        "merge": False, "cpu_offload": False,
                                        "activation_checkpointing": False, "compile": False,
                                        "eager_fallback": False}
    assert config_from_flags(args) == TrainConfig(epochs=3, export=False)
    assert flags_for(TrainConfig()) == []


EVERY_FIELD_SET = [  # together these give every field a value other than its default
    TrainConfig(task="binary", epochs=3, batch_size=32, lr=0.0005, weight_decay=0.0,
                optimizer="sgd", momentum=0.8, loss="bce", seed=7, device="cpu",
                class_weight="balanced", val=0.25, early_stop=2, monitor="val_accuracy",
                deterministic=True, devices=2, backend="gloo", nodes=2, node_rank=1,
                rdzv="host0:29400", rdzv_id="job-1", checkpoint=False, checkpoint_every=0.0,
                export=False, resume="0123abcd"),
    TrainConfig(task="regression", lr=1e-05, checkpoint_every=2.5, devices=4,
                export_script="train.py", name="digits-mlp"),
    TrainConfig(resume="last", monitor="loss", early_stop=1, device="auto", val=0.1),
    TrainConfig(lr_schedule="cosine", warmup=0.1, freeze="bert.embeddings.*,bert.pooler.*",
                unfreeze_after=2, lr_head=0.01, start_from="base/3"),
    TrainConfig(lr_schedule="onecycle", lora=8, lora_alpha=32.0, lora_targets="query,value",
                merge=True),
    TrainConfig(precision="bf16-mixed", grad_accum=4, devices=2, strategy="fsdp",
                blocks="BertLayer", reshard_after_forward=False, cpu_offload=True,
                activation_checkpointing=True, compile=True, eager_fallback=True),
]


def test_the_configs_below_cover_every_field():
    default = TrainConfig()
    changed = {k for c in EVERY_FIELD_SET for k, v in c.to_dict().items()
               if v != getattr(default, k)}
    assert changed == set(TrainConfig.field_names())


@pytest.mark.parametrize("config", EVERY_FIELD_SET, ids=lambda c: f"{c.task}-{c.devices}")
def test_flags_for_a_config_parse_back_to_the_same_config(config):
    line = " ".join(["%train net X y", *flags_for(config)])
    assert _parsed_config(line) == config


@pytest.mark.parametrize("config", EVERY_FIELD_SET, ids=lambda c: f"{c.task}-{c.devices}")
def test_the_panels_line_writer_round_trips(config):
    from aimodel_kernel.widgets.jobs import Job, magic_line

    job = Job("net", None, "torch", "X_train", None, "y_train", None,
              val_names=("X_val", "y_val"), name=config.name)
    given = {k: v for k, v in config.to_dict().items() if k != "name"}
    line = magic_line(job, given)
    assert line.startswith("%train net X_train y_train --val-data X_val y_val")
    args = parse(AimodelMagics.train, line[len("%train "):])
    assert (args.model, args.X, args.y, args.val_data) == ("net", "X_train", "y_train",
                                                           ["X_val", "y_val"])
    assert config_from_flags(vars(args)) == config


def test_the_line_writer_leaves_defaults_out_and_keeps_the_panels_order():
    from aimodel_kernel.widgets.jobs import Job, magic_line

    job = Job("clf", None, "sklearn", "X", None, "y", None, name="cancer")
    assert magic_line(job, {"val": 0.0, "seed": 3, "lr": 1e-3}) == \
        "%train clf X y --name cancer --seed 3"
    assert magic_line(job, {"val": 0.2, "seed": 3}) == \
        "%train clf X y --name cancer --val 0.2 --seed 3"


# -- choices come from the engine ---------------------------------------------------------------
def test_choice_constants_agree_with_the_modules_that_check_them():
    from aimodel_kernel.engine.core import data
    from aimodel_kernel.engine.explanation import inputs as explain_inputs
    from aimodel_kernel.engine.fairness import mitigated_models as fair_models
    from aimodel_kernel.engine.fairness import mitigation

    assert ("auto", *data.TASKS) == options.TASK_CHOICES
    assert options.EXPLAIN_METHODS == explain_inputs.METHODS
    assert options.MITIGATIONS == mitigation.METHODS
    assert options.FAIRNESS_CONSTRAINTS == mitigation.CONSTRAINTS == \
        fair_models.THRESHOLD_CONSTRAINTS == tuple(fair_models.REDUCTION_MOMENTS)
    assert set(options.FAIRNESS_TASKS) < set(options.TASK_CHOICES)


def test_compress_refuses_what_quantize_does_not_offer(cancer):
    from sklearn.linear_model import LogisticRegression

    from aimodel_kernel.engine.compression.entry import compress
    from aimodel_kernel.engine.core.errors import InputError

    X, y = cancer
    clf = LogisticRegression(solver="liblinear").fit(X, y)
    assert options.QUANTIZATIONS == ("int8",)
    with pytest.raises(InputError, match="--quantize supports int8 only; got 'int4'"):
        compress(clf, X, y, quantize="int4", log=False)


def test_magic_choices_are_the_engines_constants():
    from aimodel_kernel.magics.compress import CompressMagics
    from aimodel_kernel.magics.explain import ExplainMagics
    from aimodel_kernel.magics.fairness import FairnessMagics

    expected = [
        (AimodelMagics.train, "task", options.TASK_CHOICES),
        (AimodelMagics.evaluate, "task", options.TASK_CHOICES),
        (FairnessMagics.fairness, "task", options.FAIRNESS_TASKS),
        (FairnessMagics.fairness, "mitigate", options.MITIGATIONS),
        (FairnessMagics.fairness, "constraint", options.FAIRNESS_CONSTRAINTS),
        (ExplainMagics.explain, "method", options.EXPLAIN_METHODS),
        (CompressMagics.compress, "quantize", options.QUANTIZATIONS),
        # --optimizer / --loss: a choice or a callable's name in the namespace (no choices)
        (AimodelMagics.train, "device", options.DEVICES),
        (AimodelMagics.train, "monitor", options.MONITORS),
        (AimodelMagics.train, "backend", options.BACKENDS),
        (AimodelMagics.train, "class_weight", options.CLASS_WEIGHTS),
    ]
    for magic, dest, constant in expected:
        assert _actions(magic)[dest].choices is constant, (magic.__name__, dest)


def test_no_magic_retypes_a_list_of_choices():
    """``choices=`` is always a name; the only literals are a magic's own sub-commands."""
    own = {("core.py", ("status", "shutdown")), ("aimodel.py", ("freeze", "check"))}
    found = set()
    for path in sorted(MAGICS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "choices" and isinstance(
                    node.value, ast.List | ast.Tuple | ast.Set):
                found.add((path.name, tuple(ast.literal_eval(node.value))))
    assert found == own


# -- shared flags -------------------------------------------------------------------------------
SHARED = {  # flag -> the magics where its meaning differs, so its help text does
    "--no-log": {"diff", "fairness", "compress"},
    "--name": {"reproduce", "fairness", "compress", "experiment"},
    "--seed": {"evaluate", "fairness", "explain"},
    "--task": {"evaluate", "fairness"},
    "--ci": set(),
    "--n-boot": set(),
}


def test_shared_flags_have_one_help_text_unless_the_meaning_differs(ip):
    from aimodel_kernel.magics import arguments

    base = {"--no-log": arguments.no_log_arg, "--name": arguments.name_arg,
            "--seed": arguments.seed_arg, "--task": arguments.task_arg,
            "--ci": arguments.ci_arg, "--n-boot": arguments.n_boot_arg}
    magics = ip.magics_manager.magics["line"]
    for flag, overridden in SHARED.items():
        users = set()
        for name, fn in magics.items():
            parser = getattr(getattr(fn, "__func__", None), "parser", None)
            if parser is None or not type(fn.__self__).__module__.startswith("aimodel_kernel"):
                continue
            action = next((a for a in parser._actions if flag in a.option_strings), None)
            if action is None:
                continue
            users.add(name)
            same = action.help == base[flag].kwds["help"]
            assert same != (name in overridden), (flag, name, action.help)
        assert overridden < users and len(users) >= 2, (flag, users)


# -- one base class -----------------------------------------------------------------------------
def test_every_magics_class_derives_from_the_base_and_reads_one_config(ip, tmp_path):
    import importlib

    classes = [getattr(importlib.import_module(f"aimodel_kernel.magics.{m}"), c)
               for m, c in MAGICS]
    registry = ip.magics_manager.registry
    for cls in classes:
        assert issubclass(cls, AimodelMagicsBase)
        assert "_settings" not in vars(cls) and "settings" not in vars(cls)
    home = tmp_path / "configured"
    ip.run_line_magic("config", f"AimodelMagics.home = {str(home)!r}")
    ip.run_line_magic("config", "AimodelMagics.progress_interval = 0.5")
    try:
        for cls in classes:
            settings = registry[cls.__name__].settings()
            assert settings.home == str(home) and settings.progress_interval == 0.5, cls
    finally:
        ip.run_line_magic("config", "AimodelMagics.home = ''")
        ip.run_line_magic("config", "AimodelMagics.progress_interval = 0.2")
    assert registry["FairnessMagics"].settings().home is None
    config_classes = [c for c in classes if c.class_traits(config=True)]
    assert config_classes == [AimodelMagics]  # %config lists one aimodel configurable


def test_source_is_the_line_and_the_cell(ip):
    from aimodel_kernel.magics.resolve import cell_source

    magics = ip.magics_manager.registry["LifecycleMagics"]
    assert magics.source("diff", "a/1 b/2 ") == {"line": "%diff a/1 b/2",
                                                 "cell": cell_source(ip, "a/1 b/2 ")}
