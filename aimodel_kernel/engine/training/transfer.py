"""The transfer-learning steps of one PyTorch training around its loop: ``--from NAME/V``
(start from a recorded version's weights) and ``--lora R`` (train PEFT LoRA adapters and the
task head only, then merge them into the notebook's module).

:meth:`Transfer.check` does every check and changes nothing; :meth:`Transfer.apply` loads the
version's weights and injects the adapters into the user's own module (PEFT wraps its Linear
layers in place, so the loop, the optimizer and ``--devices`` train that same object);
:meth:`Transfer.finish` takes the adapters out again and merges them, so afterwards the
notebook object is a plain module of its own class holding the trained weights;
:meth:`Transfer.undo` gives the module back as it was when anything fails before that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...config import Settings
from ..core.errors import InputError, require
from ..core.options import TrainConfig
from ..store.adapters import Adapter, merge_into, store_base
from ..store.registry import recorded_framework_tag, resolve, version_weights
from ..store.tracking import Store
from . import finetune

_FIT_SHARE = 0.5
"""``--from`` refuses a model when fewer than this share of its weights fit the version's."""


@dataclass
class StartFrom:
    """What ``--from`` loads: the version, its weights that fit the model, the ones that do
    not (left as the user's)."""

    ref: str
    weights: dict[str, Any]
    version_keys: set[str]
    kept: list[str]
    notes: list[str] = field(default_factory=list)


def check_start_from(model: Any, ref: str, settings: Settings | None = None) -> StartFrom:
    """The weights of version ``ref`` that ``model`` can start from (same name and shape).

    Raises
    ------
    NotFoundError
        No such version.
    InputError
        A scikit-learn (or ONNX) version, or a model whose weights mostly do not fit.
    """
    record = resolve(ref, settings=settings)
    framework = recorded_framework_tag(record)
    if framework not in (None, "torch"):
        kind = "scikit-learn" if framework == "sklearn" else framework
        raise InputError(f"--from {record.ref} is a {kind} version; a PyTorch model can start "
                         "only from a PyTorch version's weights")
    weights = version_weights(record, settings=settings)
    own = model.state_dict()
    fits = {k: v for k, v in weights.items()
            if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if len(fits) < max(1, _FIT_SHARE * len(own)):
        mine = [k for k in own if k not in fits][:3]
        theirs = [k for k in weights if k not in fits][:3]
        raise InputError(f"--from {record.ref}: only {len(fits)} of {type(model).__name__}'s "
                         f"{len(own)} weights match it by name and shape (the model has "
                         f"{', '.join(mine) or 'none'}; the version has "
                         f"{', '.join(theirs) or 'none'}); pass a model of its architecture")
    kept = [k for k in own if k not in fits]
    notes = [f"started from {record.ref}'s weights"]
    if kept:
        shown = ", ".join(kept[:4]) + (f" and {len(kept) - 4} more" if len(kept) > 4 else "")
        notes.append(f"--from {record.ref}: {len(kept)} weights differ in shape or are not in "
                     f"the version and keep the model's own values ({shown})")
    return StartFrom(record.ref, fits, set(weights), kept, notes)


@dataclass
class LoraChoice:
    """What ``--lora`` adapts: rank, alpha, target names, the head trained in full."""

    r: int
    alpha: float
    targets: list[str]
    head: list[str]


def check_lora(model: Any, config: TrainConfig) -> LoraChoice:
    """The checked LoRA configuration of ``config`` for ``model`` (nothing is changed).

    Raises
    ------
    MissingDependency
        PEFT is not installed.
    InputError
        No target found, a target PEFT cannot adapt or that is not a Linear layer, a target
        inside the task head.
    """
    from torch import nn

    require("peft", extra="hf", purpose="LoRA fine-tuning (--lora)")
    if config.lora_targets:
        targets = [t.strip() for t in config.lora_targets.split(",") if t.strip()]
    else:
        targets = finetune.lora_targets(model)
    if not targets:
        raise InputError(f"--lora found no attention or MLP Linear layers in "
                         f"{type(model).__name__}; name them with --lora-targets")
    finetune.check_lora_targets(model, targets)
    head = finetune.head_prefixes(model)
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] not in targets:
            continue
        if name.split(".")[0] in head:
            raise InputError(f"--lora-targets {name.rsplit('.', 1)[-1]!r} is inside the task "
                             f"head {name.split('.')[0]!r}, which trains in full; target the "
                             "backbone's layers")
        if not isinstance(module, nn.Linear):
            raise InputError(f"--lora-targets {name.rsplit('.', 1)[-1]!r} is a "
                             f"{type(module).__name__}; LoRA versions adapt Linear layers only")
    alpha = config.lora_alpha if config.lora_alpha is not None else 2.0 * config.lora
    return LoraChoice(config.lora, float(alpha), targets, head)


class Transfer:
    """The ``--from`` and ``--lora`` steps of one training (either, both or neither)."""

    def __init__(self, start: StartFrom | None, lora: LoraChoice | None, merge: bool) -> None:
        self.start, self.lora, self.merge = start, lora, merge
        self.notes: list[str] = list(start.notes) if start else []
        self._peft: Any = None
        self._grads: dict[str, bool] = {}
        self._replaced: dict[str, Any] = {}

    @classmethod
    def check(cls, model: Any, config: TrainConfig,
              settings: Settings | None = None) -> Transfer:
        """Every check of ``--from`` and ``--lora`` against ``model``; nothing is changed."""
        start = (check_start_from(model, config.start_from, settings)
                 if config.start_from else None)
        lora = check_lora(model, config) if config.lora is not None else None
        return cls(start, lora, config.merge)

    @property
    def parent(self) -> str | None:
        """The version training starts from (the new version's parent), ``NAME/V``."""
        return self.start.ref if self.start else None

    def apply(self, model: Any, seed: int) -> None:
        """Load the ``--from`` weights into ``model`` and inject the LoRA adapters (their
        random initialisation drawn from ``seed``, the caller's random state untouched)."""
        import torch

        if self.start is not None:
            own = model.state_dict()
            self._replaced = {k: own[k].detach().clone() for k in self.start.weights}
            model.load_state_dict(self.start.weights, strict=False)
        if self.lora is not None:
            self._grads = {n: p.requires_grad for n, p in model.named_parameters()}
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self._peft = finetune.apply_lora(model, self.lora.r, alpha=self.lora.alpha,
                                                 targets=self.lora.targets)
            counts = finetune.parameter_counts(model)
            self.notes.append(f"LoRA r={self.lora.r}, alpha={self.lora.alpha:g} on "
                              f"{', '.join(self.lora.targets)}: {counts.describe()}")

    def _unload(self, model: Any) -> None:
        """Take the adapters out without merging; the parameters train as they did before."""
        if self._peft is None:
            return
        self._peft.unload()
        self._peft = None
        for name, param in model.named_parameters():
            param.requires_grad_(self._grads.get(name, True))

    def undo(self, model: Any) -> None:
        """Give ``model`` back as it was before :meth:`apply` (a failure before training)."""
        self._unload(model)
        if self._replaced:
            model.load_state_dict(self._replaced, strict=False)
            self._replaced = {}

    def finish(self, model: Any, status: str, *, store: Store, saves: bool) -> Adapter | None:
        """After training: take the adapters out of ``model`` and merge them into its weights.

        Parameters
        ----------
        model : torch.nn.Module
            The user's module (adapters injected).
        status : str
            The training's status; a diverged training's module holds its start again, so
            its adapters are dropped unmerged.
        store : Store
            Where a base checkpoint goes.
        saves : bool
            The version will be saved: record its base (a base checkpoint unless it is the
            ``--from`` version's weights unchanged).

        Returns
        -------
        Adapter or None
            ``None`` without ``--lora`` or after a divergence.
        """
        self._replaced = {}
        if self.lora is None or self._peft is None:
            return None
        if status == "diverged":
            self._unload(model)
            return None
        factors, scaling = _factors(self._peft)
        self._unload(model)
        prefixes = tuple(f"{h}." for h in self.lora.head)
        state = model.state_dict()
        head = {k: v.detach().clone() for k, v in state.items() if k.startswith(prefixes)}
        adapter = Adapter(r=self.lora.r, alpha=self.lora.alpha, scaling=scaling,
                          targets=list(self.lora.targets), head=list(self.lora.head),
                          factors=factors, head_weights=head, merged=self.merge)
        if saves and not self.merge:
            base = {k: v for k, v in state.items() if not k.startswith(prefixes)}
            adapter.base = ({"parent": self.start.ref} if self._base_is_parent(base, prefixes)
                            else store_base(store, base))
        merge_into(model, adapter)
        return adapter

    def _base_is_parent(self, base: dict[str, Any], prefixes: tuple[str, ...]) -> bool:
        """The base is the ``--from`` version's weights, unchanged (so the version can stand
        on its parent instead of a base checkpoint of its own)."""
        import torch

        if self.start is None:
            return False
        theirs = {k for k in self.start.version_keys if not k.startswith(prefixes)}
        if theirs != set(base):
            return False
        loaded = self.start.weights
        return all(k in loaded and loaded[k].dtype == v.dtype and torch.equal(loaded[k], v.cpu())
                   for k, v in base.items())


def _factors(peft_model: Any) -> tuple[dict[str, tuple[Any, Any]], float]:
    """Each adapted layer's ``(A, B)`` (copies, on the CPU) by its path in the base module,
    and the scaling they share."""
    from peft.tuners.lora import LoraLayer

    factors: dict[str, tuple[Any, Any]] = {}
    scalings = set()
    base = peft_model.get_base_model()
    for name, module in base.named_modules():
        if not isinstance(module, LoraLayer) or "default" not in module.lora_A:
            continue
        a = module.lora_A["default"].weight.detach().cpu().clone()
        b = module.lora_B["default"].weight.detach().cpu().clone()
        factors[name] = (a, b)
        scalings.add(float(module.scaling["default"]))
    if len(scalings) != 1:
        raise RuntimeError(f"LoRA layers with {len(scalings)} different scalings")
    return factors, scalings.pop()
