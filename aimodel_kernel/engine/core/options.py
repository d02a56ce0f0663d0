"""Training options: one keyword-only dataclass, validated before any work starts; the
``%train`` flag of each option (:data:`FLAGS`); and the choices of every magic's flags.

This module imports nothing heavy (no numpy, torch, scikit-learn): the magics build their flags
from these constants when ``%load_ext aimodel_kernel`` imports them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import InputError
from .model_names import check_model_name

TASKS = ("binary", "multiclass", "regression")
TASK_CHOICES = ("auto", *TASKS)
OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop")
LOSSES = ("auto", "cross_entropy", "bce", "mse", "l1", "huber")
DEVICES = ("auto", "cpu", "cuda", "mps")
MONITORS = ("val_loss", "val_accuracy", "val_metric", "loss")
BACKENDS = ("auto", "gloo", "nccl")
CLASS_WEIGHTS = ("balanced",)
LR_SCHEDULES = ("constant", "linear", "cosine", "onecycle")  # training/schedules.py
PRECISIONS = ("32", "bf16-mixed", "bf16-true", "16-mixed")  # training/precision.py
STRATEGIES = ("ddp", "fsdp")  # training/distributed/sharding.py

# The choices of the other magics' flags, defined here (a module the magics can import at
# %load_ext: no numpy) and imported by the modules that check them.
FAIRNESS_TASKS = ("auto", "binary", "regression")  # %fairness: no multiclass audits
EXPLAIN_METHODS = ("auto", "tree", "linear", "gradient", "permutation", "kernel", "lime", "both")
MITIGATIONS = ("threshold", "reduction")  # %fairness --mitigate
FAIRNESS_CONSTRAINTS = ("demographic_parity", "equalized_odds", "true_positive_rate_parity")
QUANTIZATIONS = ("int8",)  # %compress --quantize


@dataclass(kw_only=True)
class TrainConfig:
    """How to train. Every field has a default; all are recorded with the run.

    Parameters
    ----------
    task : {"auto", "binary", "multiclass", "regression"}
        Inferred from the target by default.
    epochs, batch_size, lr, weight_decay, optimizer, loss, momentum
        PyTorch loop settings (AdamW and cross-entropy / MSE by default). ``loss`` may also be
        a callable ``fn(predictions, target)`` (or an ``nn.Module``) and ``optimizer`` a
        factory ``fn(params) -> Optimizer`` (``functools.partial(torch.optim.SGD, lr=0.1)``);
        they are recorded by their qualified names.
    seed : int, optional
        Seeds the split, shuffling and torch; one is drawn and recorded when not given.
    device : {"auto", "cpu", "cuda", "mps"}
    devices : int
        Worker processes for distributed data-parallel training (1: train in the kernel).
    backend : {"auto", "gloo", "nccl"}
        ``torch.distributed`` backend for ``devices > 1``: NCCL on GPUs, gloo on CPU.
    nodes : int
        Machines taking part (each runs the same ``%train`` line with ``devices`` processes);
        above 1 they meet through the elastic launcher's c10d rendezvous at ``rdzv``.
    node_rank : int
        This machine's place in ``0 .. nodes - 1``. Node 0 hosts the rendezvous store, so it
        runs on the machine ``rdzv`` names; the global ranks are assigned by the rendezvous,
        not by ``node_rank``.
    rdzv : str, optional
        ``HOST:PORT`` of the rendezvous (needed when ``nodes > 1``).
    rdzv_id : str, optional
        Rendezvous id, the same on every node; derived from the data, model class, seed and
        sizes when not given.
    class_weight : {None, "balanced"}
        Weight the loss (PyTorch) or set ``class_weight`` (scikit-learn) for imbalanced classes.
    val : float
        Fraction of the training rows held out for validation (0 for none).
    early_stop : int, optional
        Stop after this many epochs without improvement of ``monitor``; the best weights are
        restored. A validation ``monitor`` needs ``val`` or explicit validation data.
    monitor : {"val_loss", "val_accuracy", "val_metric", "loss"}
    deterministic : bool
        ``torch.use_deterministic_algorithms`` and seeded everything; same inputs, same weights.
    checkpoint : bool
        Keep checkpoints (needed for ``resume``): the state at an epoch end, written at most
        every ``checkpoint_every`` seconds while training and always when it is interrupted.
    checkpoint_every : float
        Seconds between two checkpoint writes during training; 0 writes one after every epoch.
    export : bool
        Save a ``torch.export`` program beside the weights so the version loads without the class.
    resume : str, optional
        Run id (or ``"last"``) whose checkpoint to continue from, with any ``devices``. With
        several nodes every node passes the same value; the node that recorded the run sends
        its checkpoint to the others and records the resumed run again.
    name : str, optional
        Register the trained model as a new version of this registered model.
    export_script : str, optional
        Write a ``torchrun`` script here (and its job file beside it) instead of training; the
        script trains on ``devices`` processes by default and records the run when it runs.
    lr_schedule : {"constant", "linear", "cosine", "onecycle"}
        The learning rate over the optimizer steps (stepped per step, recorded).
    warmup : float
        Fraction of all steps over which the learning rate rises linearly from 0.
    freeze : str, optional
        Comma-separated glob patterns over parameter names to freeze
        (``bert.embeddings.*,bert.encoder.layer.[0-3].*``).
    unfreeze_after : int, optional
        Epochs after which the frozen parameters train too.
    lr_head : float, optional
        Learning rate of the task head (``classifier``, ``score`` ...); ``lr`` for the rest.
    lora : int, optional
        Train LoRA adapters of this rank (PEFT) and the task head instead of every weight.
    lora_alpha : float, optional
        LoRA's scaling numerator (``2 * lora`` by default).
    lora_targets : str, optional
        Comma-separated module names to adapt (attention and MLP Linear layers by default).
    merge : bool
        Save the LoRA adapters merged into the base weights instead of the adapters alone.
    start_from : str, optional
        ``NAME/V`` or ``NAME@ALIAS`` whose weights training starts from (``--from``); the new
        version's parent.
    precision : {"32", "bf16-mixed", "bf16-true", "16-mixed"}
        ``torch.autocast`` to bfloat16 (or float16, with a gradient scaler; GPUs only) over
        float32 weights, or the weights themselves in bfloat16 (``bf16-true``).
    grad_accum : int
        Micro-batches per optimizer step: ``batch_size`` stays the rows of one step (over all
        processes), split into this many micro-batches; the gradient is the whole step's.
    strategy : {"ddp", "fsdp"}
        ``devices > 1``: replicate the model on every process (DDP) or shard its parameters,
        gradients and optimizer state over them (FSDP2 ``fully_shard``).
    blocks : str, optional
        Comma-separated class names of the submodules FSDP shards and activation checkpointing
        wraps each on its own (default: a Hugging Face model's layers, else the repeated
        children of ``nn.Sequential`` / ``nn.ModuleList`` stacks).
    reshard_after_forward : bool
        FSDP: free each block's gathered parameters after its forward (less memory, one more
        all-gather in the backward).
    cpu_offload : bool
        FSDP: keep the sharded parameters and optimizer state in CPU memory.
    activation_checkpointing : bool
        Recompute each block's activations in the backward instead of keeping them
        (non-reentrant ``torch.utils.checkpoint``).
    compile : bool
        ``torch.compile`` the model before training.
    eager_fallback : bool
        With ``compile``: train uncompiled (with a note) when torch cannot compile the model,
        instead of refusing.
    """

    task: str = "auto"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    optimizer: str | Callable[..., Any] = "adamw"
    momentum: float = 0.9
    loss: str | Callable[..., Any] = "auto"
    seed: int | None = None
    device: str = "auto"
    class_weight: str | None = None
    val: float = 0.0
    early_stop: int | None = None
    monitor: str = "val_loss"
    deterministic: bool = False
    devices: int = 1
    backend: str = "auto"
    nodes: int = 1
    node_rank: int = 0
    rdzv: str | None = None
    rdzv_id: str | None = None
    checkpoint: bool = True
    checkpoint_every: float = 5.0
    export: bool = True
    resume: str | None = None
    name: str | None = None
    export_script: str | None = None
    lr_schedule: str = "constant"
    warmup: float = 0.0
    freeze: str | None = None
    unfreeze_after: int | None = None
    lr_head: float | None = None
    lora: int | None = None
    lora_alpha: float | None = None
    lora_targets: str | None = None
    merge: bool = False
    start_from: str | None = None
    precision: str = "32"
    grad_accum: int = 1
    strategy: str = "ddp"
    blocks: str | None = None
    reshard_after_forward: bool = True
    cpu_offload: bool = False
    activation_checkpointing: bool = False
    compile: bool = False
    eager_fallback: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first option out of range."""
        _positive_int("epochs", self.epochs)
        _positive_int("batch-size", self.batch_size)
        if not self.lr > 0:
            raise InputError(f"--lr must be > 0; got {self.lr}")
        if self.weight_decay < 0:
            raise InputError(f"--weight-decay must be >= 0; got {self.weight_decay}")
        if not self.checkpoint_every >= 0:
            raise InputError(f"--checkpoint-every must be >= 0 seconds (0: after every epoch); "
                             f"got {self.checkpoint_every}")
        if not 0 <= self.val < 1:
            raise InputError(f"--val must be a fraction in [0, 1); got {self.val}")
        if self.early_stop is not None:
            _positive_int("early-stop", self.early_stop)
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise InputError(f"--seed must be in [0, 2**32); got {self.seed}")
        _positive_int("devices", self.devices)
        self._validate_devices()
        _choice("backend", self.backend, BACKENDS)
        if self.devices > 1 and self.batch_size < self.devices:
            raise InputError(f"--batch-size {self.batch_size} is the global batch, split over "
                             f"--devices {self.devices}: make it at least {self.devices}")
        self._validate_nodes()
        if self.export_script is not None and self.resume:
            raise InputError("--export-script writes a fresh training; it cannot --resume")
        _choice_or_callable("optimizer", self.optimizer, OPTIMIZERS)
        _choice_or_callable("loss", self.loss, LOSSES)
        _choice("device", self.device, DEVICES)
        _choice("monitor", self.monitor, MONITORS)
        _choice("task", self.task, TASK_CHOICES)
        if self.class_weight not in (None, *CLASS_WEIGHTS):
            raise InputError(f"--class-weight must be 'balanced'; got {self.class_weight!r}")
        if self.name is not None:
            check_model_name(self.name)
        self._validate_finetune()
        self._validate_scale()

    def _validate_scale(self) -> None:
        # --- precision, accumulation, sharding, compilation (issue 15) ---
        _choice("precision", self.precision, PRECISIONS)
        if self.precision == "16-mixed" and self.device == "cpu":
            raise InputError("--precision 16-mixed needs a GPU (float16 autocast with a gradient "
                             "scaler); on CPU use --precision bf16-mixed")
        _positive_int("grad-accum", self.grad_accum)
        processes = self.devices * self.nodes
        if self.grad_accum * processes > self.batch_size:
            per = f" per process ({processes} processes)" if processes > 1 else ""
            raise InputError(f"--grad-accum {self.grad_accum} splits each step's --batch-size "
                             f"{self.batch_size} into micro-batches of under one row{per}; use "
                             f"--grad-accum {max(1, self.batch_size // processes)} or fewer, or "
                             "a larger --batch-size")
        _choice("strategy", self.strategy, STRATEGIES)
        if self.strategy == "fsdp" and not self.distributed:
            raise InputError("--strategy fsdp shards the model over worker processes; add "
                             "--devices N (N >= 2)")
        if self.strategy != "fsdp" and (self.cpu_offload or not self.reshard_after_forward):
            flag = "--cpu-offload" if self.cpu_offload else "--no-reshard-after-forward"
            raise InputError(f"{flag} applies to --strategy fsdp")
        if self.blocks is not None and not (self.strategy == "fsdp"
                                            or self.activation_checkpointing):
            raise InputError("--blocks names what --strategy fsdp shards and "
                             "--activation-checkpointing wraps; add one of them")
        if self.eager_fallback and not self.compile:
            raise InputError("--eager-fallback applies to --compile")

    def _validate_finetune(self) -> None:
        # --- schedules and transfer learning (training/schedules.py, training/finetune.py) ---
        _choice("lr-schedule", self.lr_schedule, LR_SCHEDULES)
        if not 0 <= self.warmup < 1:
            raise InputError(f"--warmup must be a fraction of the steps in [0, 1); got "
                             f"{self.warmup}")
        if self.unfreeze_after is not None:
            _positive_int("unfreeze-after", self.unfreeze_after)
            if not self.freeze:
                raise InputError("--unfreeze-after needs --freeze PATTERNS (what to unfreeze)")
        if self.lr_head is not None and not self.lr_head > 0:
            raise InputError(f"--lr-head must be > 0; got {self.lr_head}")
        if self.lora is not None:
            _positive_int("lora", self.lora)
        elif self.lora_alpha is not None or self.lora_targets is not None or self.merge:
            raise InputError("--lora-alpha, --lora-targets and --merge need --lora RANK")
        if self.lora_alpha is not None and not self.lora_alpha > 0:
            raise InputError(f"--lora-alpha must be > 0; got {self.lora_alpha}")
        if self.lora is not None and self.freeze:
            raise InputError("--lora already trains only the adapters and the head; drop "
                             "--freeze, or fine-tune without --lora")

    @property
    def distributed(self) -> bool:
        """Whether training runs on worker processes (several devices or several nodes)."""
        return self.devices > 1 or self.nodes > 1

    def _validate_devices(self) -> None:
        # one worker process per device: never more than this machine's CPU cores (GPUs are
        # counted where the backend is chosen, training/distributed/launch.py). An exported
        # script runs elsewhere: its --devices is that machine's business.
        cpus = os.cpu_count() or 1
        if self.devices > cpus and self.export_script is None:
            raise InputError(f"--devices {self.devices} asks for more worker processes than the "
                             f"{cpus} CPU cores of this machine; use --devices {cpus} or fewer "
                             "(or --export-script to train on a bigger machine)")

    def _validate_nodes(self) -> None:
        # --- several nodes (training/distributed/nodes.py) ---
        _positive_int("nodes", self.nodes)
        if self.nodes == 1:
            if self.rdzv is not None or self.rdzv_id is not None or self.node_rank != 0:
                raise InputError("--rdzv, --rdzv-id and --node-rank need --nodes 2 or more")
            return
        if not isinstance(self.node_rank, int) or not 0 <= self.node_rank < self.nodes:
            raise InputError(f"--node-rank must be in 0..{self.nodes - 1} for --nodes "
                             f"{self.nodes}; got {self.node_rank!r}")
        if self.rdzv is None:
            raise InputError(f"--nodes {self.nodes} needs --rdzv HOST:PORT, the address where "
                             "node 0 hosts the rendezvous")
        split_endpoint(self.rdzv)
        if self.seed is None:
            raise InputError(f"--nodes {self.nodes} needs --seed, the same on every node (each "
                             "node shuffles and splits its copy of the data with it)")
        if self.batch_size < self.devices * self.nodes:
            raise InputError(f"--batch-size {self.batch_size} is the global batch, split over "
                             f"{self.devices * self.nodes} processes: make it at least that")

    def to_dict(self) -> dict[str, Any]:
        """Every field; a callable ``loss`` / ``optimizer`` as its qualified name."""
        return asdict(self.replaced())

    def replaced(self) -> TrainConfig:
        """A copy with a callable ``loss`` / ``optimizer`` replaced by its qualified name (what
        is recorded)."""
        import copy

        plain = copy.copy(self)
        plain.loss, plain.optimizer = callable_name(self.loss), callable_name(self.optimizer)
        return plain

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class OptionFlag:
    """How one :class:`TrainConfig` field is set on a ``%train`` line.

    Parameters
    ----------
    field : str
        The :class:`TrainConfig` field.
    flag : str
        The ``%train`` flag that sets it (``--batch-size``).
    kind : {"int", "float", "str", "choice", "named", "switch", "off"}
        A value of that type; one of ``choices``; one of ``choices`` or the name of a callable
        in the notebook (``named``: ``--loss focal_loss``, resolved by the magic); a flag
        without a value that sets the field to ``True`` (``--deterministic``), or to ``False``
        (``off``: ``--no-checkpoint``).
    choices : tuple of str
        The allowed values of a ``choice`` (``None`` is allowed too when the default is ``None``).
    torch_only : bool
        Refused for a scikit-learn estimator: the PyTorch loop, checkpoints and processes.
        (``--no-checkpoint`` and ``--no-export`` are PyTorch's too, but have always been
        accepted, and ignored, for an estimator.)
    """

    field: str
    flag: str
    kind: str
    choices: tuple[str, ...] = ()
    torch_only: bool = False

    @property
    def dest(self) -> str:
        """The flag's attribute on the parsed ``%train`` arguments (``batch_size``)."""
        return self.flag[2:].replace("-", "_")

    @property
    def value_type(self) -> type | None:
        """What the flag's value is converted with (``None``: kept as text, or no value)."""
        return {"int": int, "float": float}.get(self.kind)


# Every TrainConfig field's %train flag. The order is the order of the checks: the first
# PyTorch-only flag given for an estimator is the one named in the error.
FLAGS = (
    OptionFlag("name", "--name", "str"),
    OptionFlag("task", "--task", "choice", TASK_CHOICES),
    OptionFlag("seed", "--seed", "int"),
    OptionFlag("class_weight", "--class-weight", "choice", CLASS_WEIGHTS),
    OptionFlag("val", "--val", "float"),
    OptionFlag("deterministic", "--deterministic", "switch"),
    # the PyTorch loop
    OptionFlag("epochs", "--epochs", "int", torch_only=True),
    OptionFlag("batch_size", "--batch-size", "int", torch_only=True),
    OptionFlag("lr", "--lr", "float", torch_only=True),
    OptionFlag("weight_decay", "--weight-decay", "float", torch_only=True),
    # a choice or a callable's name in the namespace (the %train magic resolves it)
    OptionFlag("optimizer", "--optimizer", "named", OPTIMIZERS, torch_only=True),
    OptionFlag("momentum", "--momentum", "float", torch_only=True),
    OptionFlag("loss", "--loss", "named", LOSSES, torch_only=True),
    OptionFlag("device", "--device", "choice", DEVICES, torch_only=True),
    OptionFlag("early_stop", "--early-stop", "int", torch_only=True),
    OptionFlag("monitor", "--monitor", "choice", MONITORS, torch_only=True),
    # checkpoints and resume
    OptionFlag("resume", "--resume", "str", torch_only=True),
    OptionFlag("checkpoint", "--no-checkpoint", "off"),
    OptionFlag("checkpoint_every", "--checkpoint-every", "float", torch_only=True),
    OptionFlag("export", "--no-export", "off"),
    # several processes and machines
    OptionFlag("devices", "--devices", "int", torch_only=True),
    OptionFlag("backend", "--backend", "choice", BACKENDS, torch_only=True),
    OptionFlag("nodes", "--nodes", "int", torch_only=True),
    OptionFlag("node_rank", "--node-rank", "int", torch_only=True),
    OptionFlag("rdzv", "--rdzv", "str", torch_only=True),
    OptionFlag("rdzv_id", "--rdzv-id", "str", torch_only=True),
    OptionFlag("export_script", "--export-script", "str", torch_only=True),
    # schedules and transfer learning
    OptionFlag("lr_schedule", "--lr-schedule", "choice", LR_SCHEDULES, torch_only=True),
    OptionFlag("warmup", "--warmup", "float", torch_only=True),
    OptionFlag("start_from", "--from", "str", torch_only=True),
    OptionFlag("freeze", "--freeze", "str", torch_only=True),
    OptionFlag("unfreeze_after", "--unfreeze-after", "int", torch_only=True),
    OptionFlag("lr_head", "--lr-head", "float", torch_only=True),
    OptionFlag("lora", "--lora", "int", torch_only=True),
    OptionFlag("lora_alpha", "--lora-alpha", "float", torch_only=True),
    OptionFlag("lora_targets", "--lora-targets", "str", torch_only=True),
    OptionFlag("merge", "--merge", "switch", torch_only=True),
    # large models: precision, accumulation, sharding, compilation
    OptionFlag("precision", "--precision", "choice", PRECISIONS, torch_only=True),
    OptionFlag("grad_accum", "--grad-accum", "int", torch_only=True),
    OptionFlag("strategy", "--strategy", "choice", STRATEGIES, torch_only=True),
    OptionFlag("blocks", "--blocks", "str", torch_only=True),
    OptionFlag("reshard_after_forward", "--no-reshard-after-forward", "off", torch_only=True),
    OptionFlag("cpu_offload", "--cpu-offload", "switch", torch_only=True),
    OptionFlag("activation_checkpointing", "--activation-checkpointing", "switch",
               torch_only=True),
    OptionFlag("compile", "--compile", "switch", torch_only=True),
    OptionFlag("eager_fallback", "--eager-fallback", "switch", torch_only=True),
)
FLAG_OF = {f.field: f for f in FLAGS}  # TrainConfig field -> its OptionFlag


def options_from_flags(values: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`TrainConfig` keywords from parsed ``%train`` flags.

    ``values`` maps each flag's :attr:`~OptionFlag.dest` to its value (``vars(args)``); other
    keys (the model, X, y, ``val_data``, ``quiet``) are ignored, ``None`` is a flag not given,
    and an ``off`` flag sets its field to ``False`` only when it is given.
    """
    options: dict[str, Any] = {}
    for flag in FLAGS:
        value = values.get(flag.dest)
        if flag.kind == "off":
            if value:
                options[flag.field] = False
        elif value is not None:
            options[flag.field] = value
    return options


def config_from_flags(values: Mapping[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` of parsed ``%train`` flags (see :func:`options_from_flags`);
    :class:`InputError` for a value out of range."""
    return TrainConfig(**options_from_flags(values))


def torch_only_flags(values: Mapping[str, Any]) -> list[str]:
    """The PyTorch-only flags given among parsed ``%train`` flags, in :data:`FLAGS` order."""
    def given(flag: OptionFlag) -> bool:
        value = values.get(flag.dest)
        return bool(value) if flag.kind in ("switch", "off") else value is not None

    return [f.flag for f in FLAGS if f.torch_only and given(f)]


def flags_for(options: TrainConfig | Mapping[str, Any]) -> list[str]:
    """The ``%train`` flags (as tokens) that give these options.

    ``options`` is a :class:`TrainConfig` (its fields in order) or a mapping of field names to
    values (in its own order). ``None`` and values equal to the field's default (of the same
    type) are left out, so ``flags_for(TrainConfig())`` is ``[]``. Values are written with
    ``str``: the line parses back to the same options when no value contains a space.
    """
    items = options.to_dict() if isinstance(options, TrainConfig) else dict(options)
    tokens: list[str] = []
    for key, value in items.items():
        flag = FLAG_OF.get(key)
        if flag is None:
            raise InputError(f"{key!r} is not a training option (options: "
                             f"{', '.join(FLAG_OF)})")
        default = _DEFAULTS[key]
        if value is None or (type(value) is type(default) and value == default):
            continue
        if flag.kind == "switch":
            if value:
                tokens.append(flag.flag)
        elif flag.kind == "off":
            if not value:
                tokens.append(flag.flag)
        else:
            tokens += [flag.flag, str(value)]
    return tokens


_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``"HOST:PORT"`` as ``(host, port)``; :class:`InputError` when it is not one."""
    host, sep, port = str(endpoint).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--rdzv must be HOST:PORT with a port in 1..65535; got {endpoint!r}")
    return host, int(port)


def _positive_int(flag: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"--{flag} must be a positive integer; got {value!r}")


def callable_name(value: Any) -> Any:
    """A callable's qualified name (``module.qualname``; a ``functools.partial`` as
    ``partial(torch.optim.sgd.SGD)``); anything else as it is."""
    if isinstance(value, str) or not callable(value):
        return value
    func = getattr(value, "func", None)  # functools.partial
    if func is not None and callable(func):
        return f"partial({callable_name(func)})"
    target = value if hasattr(value, "__qualname__") else type(value)  # an nn.Module instance
    return f"{getattr(target, '__module__', '?')}.{target.__qualname__}"


def _choice_or_callable(flag: str, value: Any, allowed: tuple[str, ...]) -> None:
    if (isinstance(value, str) or not callable(value)) and value not in allowed:
        raise InputError(f"--{flag} must be one of {', '.join(allowed)} or the name of a "
                         f"callable in the namespace; got {value!r}")


def _choice(flag: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"--{flag} must be one of {', '.join(allowed)}; got {value!r}")
