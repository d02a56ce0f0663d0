"""Training options: one keyword-only dataclass, validated before any work starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import InputError

OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop")
LOSSES = ("auto", "cross_entropy", "bce", "mse", "l1", "huber")
DEVICES = ("auto", "cpu", "cuda", "mps")
MONITORS = ("val_loss", "val_accuracy", "val_metric", "loss")


@dataclass(kw_only=True)
class TrainConfig:
    """How to train. Every field has a default; all are recorded with the run.

    Parameters
    ----------
    task : {"auto", "binary", "multiclass", "regression"}
        Inferred from the target by default.
    epochs, batch_size, lr, weight_decay, optimizer, loss, momentum
        PyTorch loop settings (AdamW and cross-entropy / MSE by default).
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
    """

    task: str = "auto"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    momentum: float = 0.9
    loss: str = "auto"
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
        _choice("backend", self.backend, ("auto", "gloo", "nccl"))
        if self.devices > 1 and self.batch_size < self.devices:
            raise InputError(f"--batch-size {self.batch_size} is the global batch, split over "
                             f"--devices {self.devices}: make it at least {self.devices}")
        self._validate_nodes()
        if self.export_script is not None and self.resume:
            raise InputError("--export-script writes a fresh training; it cannot --resume")
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("loss", self.loss, LOSSES)
        _choice("device", self.device, DEVICES)
        _choice("monitor", self.monitor, MONITORS)
        _choice("task", self.task, ("auto", "binary", "multiclass", "regression"))
        if self.class_weight not in (None, "balanced"):
            raise InputError(f"--class-weight must be 'balanced'; got {self.class_weight!r}")
        if self.name is not None:
            from .tracking import check_model_name

            check_model_name(self.name)

    @property
    def distributed(self) -> bool:
        """Whether training runs on worker processes (several devices or several nodes)."""
        return self.devices > 1 or self.nodes > 1

    def _validate_nodes(self) -> None:
        # --- several nodes (multinode.py) ---
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
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


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


def _choice(flag: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"--{flag} must be one of {', '.join(allowed)}; got {value!r}")
