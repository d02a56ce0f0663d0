"""Hyperparameter widgets generated from a model: scikit-learn's ``get_params`` (with the
choices its parameter constraints allow) or, for PyTorch, the training options.

Every editable parameter has a value widget and, for sweeps, a text field taking a list or a
range (``0.01, 0.1, 1`` or ``1:10:3``). Keys carry the prefixes of the recorded parameters:
``model.<name>`` for the estimator's, ``train.<name>`` for :class:`TrainConfig` options.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from ..engine.core.errors import InputError
from ..engine.core.options import FLAG_OF, TrainConfig
from ..engine.training.sweep import kind_of, parse_scalar, parse_values

SWEEP_HINT = "sweep: 0.01, 0.1, 1  or  1:10:3"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter shown in the panel.

    ``kind`` is ``int``, ``float``, ``bool``, ``str``, ``choice`` (a dropdown of ``choices``),
    ``any`` (text read as a Python literal, ``None`` included) or ``readonly`` (a nested
    estimator or a container, shown but not edited).
    """

    key: str
    label: str
    kind: str
    default: Any
    choices: tuple = ()

    @property
    def value_kind(self) -> str:
        """How sweep text for this parameter is read."""
        if self.kind == "choice":
            return "any" if any(not isinstance(c, str) for c in self.choices) else "str"
        return self.kind


# The training options the panel offers, in the order shown; how each is edited (its kind and
# choices) follows from its %train flag (engine/options.py: FLAGS).
TORCH_OPTIONS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "momentum", "loss",
                 "seed", "val", "early_stop", "monitor", "class_weight", "deterministic",
                 "device")
SKLEARN_OPTIONS = ("seed", "val")  # class_weight is the estimator's own parameter


def option_spec(name: str, default: Any) -> ParamSpec:
    """The widget of the training option ``name`` (a :class:`TrainConfig` field), from its
    ``%train`` flag: a dropdown of the flag's choices (with ``None`` for an optional choice), a
    checkbox for a switch, a literal field for an optional number, else a number or text."""
    flag = FLAG_OF[name]
    choices: tuple = ()
    if flag.kind in ("choice", "named"):  # the panel offers a named option's built-ins
        kind, choices = "choice", ((None,) if default is None else ()) + flag.choices
    elif flag.kind in ("switch", "off"):
        kind = "bool"
    elif default is None:
        kind = "any"
    else:
        kind = flag.kind
    return ParamSpec(f"train.{name}", name, kind, default, choices)


def training_specs(framework: str) -> list[ParamSpec]:
    """The training options offered: all loop options for PyTorch; the seed and the validation
    fraction for scikit-learn (its other parameters come from the estimator)."""
    defaults = TrainConfig().to_dict()
    names = TORCH_OPTIONS if framework == "torch" else SKLEARN_OPTIONS
    return [option_spec(n, defaults[n]) for n in names]


def _constraint_choices(owner: Any, name: str) -> tuple | None:
    """The string options (and ``None`` when allowed) of scikit-learn's parameter constraints."""
    constraints = getattr(type(owner), "_parameter_constraints", {}).get(name)
    if not isinstance(constraints, list):
        return None
    options: list[Any] = []
    for c in constraints:
        found = getattr(c, "options", None)
        if isinstance(found, set | frozenset) and all(isinstance(o, str) for o in found):
            deprecated = getattr(c, "deprecated", set()) or set()
            options += sorted(found - set(deprecated))
    if not options:
        return None
    if any(c is None for c in constraints):
        options.append(None)
    return tuple(options)


def _takes_reals(owner: Any, name: str) -> bool:
    """Whether the constraints allow any real number (an int default such as ``1`` for a
    parameter that takes floats gets a float field)."""
    import numbers

    constraints = getattr(type(owner), "_parameter_constraints", {}).get(name)
    if not isinstance(constraints, list):
        return False
    return any(getattr(c, "type", None) is numbers.Real for c in constraints)


def sklearn_specs(model: Any) -> list[ParamSpec]:
    """One spec per ``get_params(deep=True)`` entry; nested estimators and containers are
    read-only (their own parameters appear as ``step__name``)."""
    params = model.get_params(deep=True)
    specs = []
    for key, value in params.items():
        owner_key, _, name = key.rpartition("__")
        owner = params.get(owner_key, model) if owner_key else model
        label = key
        if hasattr(value, "get_params") or not isinstance(value, bool | int | float | str | None):
            specs.append(ParamSpec(f"model.{key}", label, "readonly", value))
            continue
        choices = _constraint_choices(owner, name)
        if choices and (value is None or isinstance(value, str)):
            if value not in choices:
                choices = (*choices, value)
            specs.append(ParamSpec(f"model.{key}", label, "choice", value, choices))
        elif isinstance(value, int) and not isinstance(value, bool) and _takes_reals(owner, name):
            specs.append(ParamSpec(f"model.{key}", label, "float", float(value)))
        else:
            specs.append(ParamSpec(f"model.{key}", label, kind_of(value), value))
    return specs


def _literal_text(value: Any) -> str:
    return "None" if value is None else repr(value)


class ParamForm:
    """The widgets of a list of specs; reads values and sweep lists back, validated.

    Parameters
    ----------
    specs : list of ParamSpec
    title : str
        Shown above the rows.
    """

    def __init__(self, specs: list[ParamSpec], title: str = "") -> None:
        import ipywidgets as w

        self.specs = {s.key: s for s in specs}
        self.inputs: dict[str, Any] = {}
        self.sweeps: dict[str, Any] = {}
        rows = [w.HTML(f"<b>{escape(title)}</b>")] if title else []
        for spec in specs:
            label = w.Label(spec.label, layout=w.Layout(width="170px"))
            if spec.kind == "readonly":
                shown = type(spec.default).__name__ if hasattr(spec.default, "get_params") \
                    else repr(spec.default)
                shown = shown if len(shown) <= 60 else shown[:59] + "…"
                rows.append(w.HBox([label, w.HTML(f"<code>{escape(shown)}</code> (read-only)")]))
                continue
            box = self._input(spec, w)
            sweep = w.Text(placeholder=SWEEP_HINT, layout=w.Layout(width="220px", display="none"))
            self.inputs[spec.key], self.sweeps[spec.key] = box, sweep
            rows.append(w.HBox([label, box, sweep]))
        self.view = w.VBox(rows)

    @staticmethod
    def _input(spec: ParamSpec, w: Any) -> Any:
        size = w.Layout(width="180px")
        if spec.kind == "bool":
            return w.Checkbox(value=bool(spec.default), indent=False, layout=size)
        if spec.kind == "int":
            return w.IntText(value=spec.default, layout=size)
        if spec.kind == "float":
            return w.FloatText(value=spec.default, layout=size)
        if spec.kind == "choice":
            options = [("None" if c is None else str(c), c) for c in spec.choices]
            return w.Dropdown(options=options, value=spec.default, layout=size)
        if spec.kind == "str":
            return w.Text(value=spec.default, layout=size)
        return w.Text(value=_literal_text(spec.default), layout=size)

    # -- lookups ----------------------------------------------------------------------------
    def key_of(self, name: str) -> str:
        """The key of a parameter given by key (``model.C``) or label (``C``)."""
        if name in self.inputs:
            return name
        found = [k for k, s in self.specs.items() if s.label == name and k in self.inputs]
        if len(found) == 1:
            return found[0]
        known = ", ".join(self.specs[k].label for k in self.inputs)
        raise InputError(f"no editable parameter {name!r} here (parameters: {known})")

    def value(self, key: str) -> Any:
        """The value in the widget; ``any`` text is read as a literal (``None``, ``3``, ``'a'``)."""
        spec, box = self.specs[key], self.inputs[key]
        if spec.kind == "any":
            text = box.value.strip()
            return None if text in ("", "None") else parse_scalar(text, "any", label=spec.label)
        return box.value

    def values(self) -> dict[str, Any]:
        return {key: self.value(key) for key in self.inputs}

    def changed(self) -> dict[str, Any]:
        """Parameters whose widget differs from the model's current value (or the default)."""
        out = {}
        for key, value in self.values().items():
            default = self.specs[key].default
            if type(value) is not type(default) or value != default:
                out[key] = value
        return out

    def space(self) -> dict[str, list[Any]]:
        """The swept parameters: every non-empty sweep field, parsed."""
        out = {}
        for key, box in self.sweeps.items():
            if box.value.strip():
                spec = self.specs[key]
                values = parse_values(box.value, spec.value_kind, label=spec.label)
                if spec.kind == "choice":
                    wrong = [v for v in values if v not in spec.choices]
                    if wrong:
                        allowed = ", ".join("None" if c is None else str(c) for c in spec.choices)
                        raise InputError(f"{spec.label}: {wrong[0]!r} is not one of {allowed}")
                out[key] = values
        return out

    # -- setting from Python ----------------------------------------------------------------
    def set(self, **values: Any) -> None:
        """Set widget values by label or key: ``form.set(C=0.5, max_iter=200)``."""
        for name, value in values.items():
            key = self.key_of(name)
            spec = self.specs[key]
            self.inputs[key].value = _literal_text(value) if spec.kind == "any" else value

    def set_sweep(self, **texts: str) -> None:
        """Fill sweep fields by label or key: ``form.set_sweep(C="0.1, 1, 10")``."""
        for name, text in texts.items():
            self.sweeps[self.key_of(name)].value = text

    def close(self) -> None:
        """Close every widget of the form (it is being replaced)."""
        for row in self.view.children:
            for widget in getattr(row, "children", ()):
                widget.close()
            row.close()
        self.view.close()

    def show_sweep(self, shown: bool) -> None:
        for box in self.sweeps.values():
            box.layout.display = "" if shown else "none"
