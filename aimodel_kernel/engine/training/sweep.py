"""Hyperparameter sweeps: value lists and ranges, the full grid or a seeded random sample of it,
and a runner that trains one combination after another and stops between runs when asked.

Swept keys use the prefixes of the recorded parameters: ``model.C`` (a scikit-learn parameter,
set on a copy of the estimator) and ``train.lr`` (a :class:`TrainConfig` option). The runner
knows nothing about widgets; a UI passes a ``train_one`` callable and a :class:`StopFlag`.
"""

from __future__ import annotations

import ast
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import AimodelError, InputError
from ..core.events import StopFlag
from ..core.metric_names import HEADLINE, MACHINE_METRICS, higher_is_better
from ..core.plain import jsonable

MAX_VALUES = 1000  # values one range may expand to
MAX_GRID = 10_000  # combinations a full grid may have
# the metric a leaderboard ranks by: the first one every finished run has
RANKING = tuple(k for k in HEADLINE if not k.startswith("eval."))
"""What ranks trials: the headline metrics a training records (no evaluation yet)."""
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


# -- values ---------------------------------------------------------------------------------------
def kind_of(value: Any) -> str:
    """``bool``, ``int``, ``float``, ``str`` or ``any``: how text for this parameter is read."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "any"


def parse_scalar(token: str, kind: str = "any", *, label: str = "value") -> Any:
    """One value from text, as ``kind`` (``None`` is accepted for every kind).

    Raises
    ------
    InputError
        Naming ``label`` when the text is not a value of that kind.
    """
    token = token.strip()
    if token in ("None", "none"):
        return None
    try:
        if kind == "int":
            number = float(token)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind == "float":
            return float(token)
        if kind == "bool":
            if token.lower() in _TRUE:
                return True
            if token.lower() in _FALSE:
                return False
            raise ValueError
    except ValueError:
        raise InputError(f"{label}: {token!r} is not {_KIND_WORDS[kind]}") from None
    if kind == "str":
        return _unquote(token)
    try:
        return ast.literal_eval(token)
    except (ValueError, SyntaxError):
        return _unquote(token)


_KIND_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false",
               "str": "text", "any": "a value"}


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def parse_values(text: str, kind: str = "any", *, label: str = "values") -> list[Any]:
    """The values of one swept parameter, from what a person types.

    ``"0.01, 0.1, 1"`` is a list; ``"1:10:3"`` a range ``start:stop:step`` whose ``stop`` is
    included when a step lands on it (``1, 4, 7, 10``); ``"1:5"`` counts by one (integers);
    ``"1e-4:1e-1:*10"`` multiplies by the step (``0.0001, 0.001, 0.01, 0.1``). Text parameters
    are only ever lists. Repeated values are kept once.

    Raises
    ------
    InputError
        Empty text, a value of the wrong kind, a step that never reaches ``stop``, a range of
        more than ``MAX_VALUES`` values.
    """
    text = text.strip()
    if not text:
        raise InputError(f"{label}: no values; type a list such as 0.01, 0.1, 1 or a range 1:10:2")
    if ":" in text and "," not in text and kind in ("int", "float", "any"):
        values = _range(text, kind, label)
    else:
        values = [parse_scalar(t, kind, label=label) for t in text.split(",") if t.strip()]
    unique: list[Any] = []
    for v in values:
        if not any(v == u and type(v) is type(u) for u in unique):
            unique.append(v)
    return unique


def _range(text: str, kind: str, label: str) -> list[Any]:
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise InputError(f"{label}: {text!r} is not a range; write start:stop or start:stop:step")
    step_text = parts[2] if len(parts) == 3 else ""
    geometric = step_text[:1] in ("*", "x")
    whole = all(_is_int(p) for p in [*parts[:2], *([step_text] if step_text else [])])
    number = "int" if kind == "int" or (kind == "any" and whole and not geometric) else "float"
    start, stop = (parse_scalar(p, number, label=label) for p in parts[:2])
    if start is None or stop is None:
        raise InputError(f"{label}: a range needs numbers; got {text!r}")
    if geometric:
        factor = parse_scalar(step_text[1:], "float", label=label)
        if start <= 0 or factor is None or factor <= 1 or stop < start:
            raise InputError(f"{label}: a geometric range needs 0 < start <= stop and a factor "
                             f"above 1; got {text!r}")
        count = math.floor(math.log(stop / start) / math.log(factor) + 1e-9) + 1
        values = [start * factor**i for i in range(count)]
    else:
        if step_text:
            step = parse_scalar(step_text, number, label=label)
        elif number == "int" or (float(start).is_integer() and float(stop).is_integer()):
            step = 1
        else:
            raise InputError(f"{label}: give a step for a range of decimals, e.g. {text}:0.1")
        if not step or (stop - start) / step < 0:
            raise InputError(f"{label}: the step of {text!r} never reaches {stop}")
        count = math.floor((stop - start) / step + 1e-9) + 1
        values = [start + i * step for i in range(min(count, MAX_VALUES + 1))]
    if count > MAX_VALUES:
        raise InputError(f"{label}: {text!r} has {count} values; at most {MAX_VALUES}")
    if number == "int":
        return [round(v) for v in values]
    return [float(f"{v:.12g}") for v in values]


def _is_int(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


# -- combinations ---------------------------------------------------------------------------------
def expand(space: Mapping[str, Sequence[Any]], *, mode: str = "grid", n: int | None = None,
           seed: int = 0, limit: int = MAX_GRID) -> list[dict[str, Any]]:
    """The combinations to run: every one (``grid``) or ``n`` drawn without repetition
    (``random``, reproducible from ``seed``). Keys keep the order of ``space``.

    Raises
    ------
    InputError
        An unknown mode, ``n`` missing or below 1, a parameter with no values, a grid larger than
        ``limit``.
    """
    if mode not in ("grid", "random"):
        raise InputError(f"sweep mode must be grid or random; got {mode!r}")
    keys = list(space)
    sizes = [len(space[k]) for k in keys]
    empty = [k for k, size in zip(keys, sizes, strict=True) if size == 0]
    if empty:
        raise InputError(f"{empty[0]}: no values to sweep")
    total = math.prod(sizes)
    if mode == "random":
        if n is None or isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"a random sweep needs a number of runs of at least 1; got {n!r}")
        if n < total:
            picks = random.Random(seed).sample(range(total), n)
            return [_combination(space, keys, sizes, i) for i in picks]
    if total > limit:
        raise InputError(f"the grid has {total:,} combinations (at most {limit:,}); use a random "
                         "sample of it instead")
    return [_combination(space, keys, sizes, i) for i in range(total)]


def _combination(space: Mapping[str, Sequence[Any]], keys: list[str], sizes: list[int],
                 index: int) -> dict[str, Any]:
    """Combination number ``index`` in grid order (the last key changes fastest)."""
    picked: dict[str, Any] = {}
    for key, size in zip(reversed(keys), reversed(sizes), strict=True):
        index, i = divmod(index, size)
        picked[key] = space[key][i]
    return {k: picked[k] for k in keys}


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model parameters, training options)`` from ``model.*`` / ``train.*`` keys."""
    model, options = {}, {}
    for key, value in params.items():
        prefix, _, name = key.partition(".")
        if prefix == "model":
            model[name] = value
        elif prefix == "train":
            options[name] = value
        else:
            raise InputError(f"swept parameter {key!r} must start with model. or train.")
    return model, options


# -- results --------------------------------------------------------------------------------------
@dataclass
class Trial:
    """One combination of a sweep and what became of it.

    ``status`` is ``pending``, ``running``, ``finished``, ``interrupted`` (stopped inside the
    run; its MLflow run is KILLED), ``failed`` (``error`` says why) or ``skipped`` (never started
    because the sweep was stopped).
    """

    index: int
    params: dict[str, Any]
    status: str = "pending"
    run_id: str | None = None
    ref: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"index": self.index, "params": self.params, "status": self.status,
                         "run_id": self.run_id, "ref": self.ref, "metrics": self.metrics,
                         "error": self.error, "seconds": self.seconds})


@dataclass
class SweepResult:
    """A sweep: what was swept, how, and every trial in the order run."""

    name: str | None
    mode: str
    seed: int
    space: dict[str, list[Any]]
    trials: list[Trial]
    stopped: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def finished(self) -> list[Trial]:
        return [t for t in self.trials if t.status == "finished"]

    def ranking(self) -> tuple[str | None, bool]:
        """The metric runs are ranked by and whether higher is better."""
        done = self.finished
        for key in RANKING:
            if done and all(key in t.metrics for t in done):
                return key, bool(higher_is_better(key))
        common = set.intersection(*(set(t.metrics) for t in done)) if done else set()
        for key in sorted(common - set(MACHINE_METRICS)):
            better = higher_is_better(key)
            if better is not None:
                return key, better
        return None, True

    def ranked(self) -> list[Trial]:
        """Finished trials best first, then the others in the order run."""
        key, higher = self.ranking()
        done = self.finished
        if key is not None:
            done = sorted(done, key=lambda t: t.metrics[key], reverse=higher)
        return done + [t for t in self.trials if t.status != "finished"]

    def best(self) -> Trial | None:
        ranked = self.ranked()
        return ranked[0] if ranked and ranked[0].status == "finished" else None

    def to_dict(self) -> dict[str, Any]:
        key, higher = self.ranking()
        best = self.best()
        return jsonable({
            "name": self.name, "mode": self.mode, "seed": self.seed, "space": self.space,
            "stopped": self.stopped, "metric": key, "higher_is_better": higher,
            "best": best.index if best else None, "notes": self.notes,
            "trials": [t.to_dict() for t in self.trials],
        })


def new_sweep(combos: Sequence[Mapping[str, Any]], *, space: Mapping[str, Sequence[Any]],
              name: str | None, mode: str, seed: int) -> SweepResult:
    """A :class:`SweepResult` with one pending trial per combination."""
    trials = [Trial(i + 1, dict(c)) for i, c in enumerate(combos)]
    return SweepResult(name, mode, seed, {k: list(v) for k, v in space.items()}, trials)


def run_sweep(sweep: SweepResult, train_one: Callable[[Trial], Any], *, stop: StopFlag,
              on_trial: Callable[[Trial], None] | None = None) -> SweepResult:
    """Run the pending trials one after another.

    Parameters
    ----------
    sweep : SweepResult
        From :func:`new_sweep`; its trials are updated in place.
    train_one : callable
        Trains one trial and returns an object with ``status``, ``run_id``, ``ref`` and
        ``metrics`` (a :class:`~.result.TrainResult`). It should pass ``stop`` on to
        :func:`~.entry.train`, so that a PyTorch run ends after its current batch.
    stop : StopFlag
        Checked before each trial: once set, no further trial starts (they are ``skipped``).
    on_trial : callable, optional
        Called when a trial starts and when it ends.

    Returns
    -------
    SweepResult
        The same object. A user error in one trial (:class:`AimodelError`, e.g. a parameter
        value the estimator refuses) fails that trial and the sweep goes on; any other exception
        fails the trial and ends the sweep, since it would recur.
    """
    notify = on_trial or (lambda trial: None)
    for trial in sweep.trials:
        if trial.status != "pending":
            continue
        if stop.is_set():
            trial.status = "skipped"
            continue
        trial.status = "running"
        notify(trial)
        started = time.perf_counter()
        try:
            outcome = train_one(trial)
        except AimodelError as exc:
            trial.status, trial.error = "failed", str(exc)
        except Exception as exc:
            trial.status, trial.error = "failed", f"{type(exc).__name__}: {exc}"
            sweep.notes.append(f"run {trial.index} failed unexpectedly ({trial.error}); "
                               "the sweep ended there")
            stop.set("failed")
        except BaseException:  # KeyboardInterrupt: record the trial, then let it through
            trial.status = "interrupted"
            trial.seconds = time.perf_counter() - started
            stop.set("interrupted")
            _skip_rest(sweep)
            notify(trial)
            raise
        else:
            trial.status = outcome.status
            trial.run_id = outcome.run_id or None
            trial.ref = outcome.ref
            trial.metrics = dict(outcome.metrics)
            if outcome.status == "interrupted":
                stop.set(stop.reason or "interrupted")
        trial.seconds = time.perf_counter() - started
        notify(trial)
    sweep.stopped = any(t.status in ("skipped", "interrupted") for t in sweep.trials)
    return sweep


def _skip_rest(sweep: SweepResult) -> None:
    for trial in sweep.trials:
        if trial.status == "pending":
            trial.status = "skipped"

