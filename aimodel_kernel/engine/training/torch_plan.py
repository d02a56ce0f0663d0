"""What one PyTorch training is: the plan checked before the run opens, and its outcome.

Shared by the one-process loop (:mod:`.torch_job`), the worker pool
(:mod:`.distributed.launch`), several nodes (:mod:`.distributed.nodes`) and exported scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import checkpoints
from .losses import LossAdapter

INITIAL_WEIGHTS = "initial.safetensors"


@dataclass
class TorchPlan:
    """Everything a PyTorch training needs, decided and checked before the run is opened."""

    device: Any
    loss: LossAdapter
    train: Any
    val: Any | None
    generator_seed: int
    checkpoint_root: Path
    feature_names: list[str] | None
    input_spec: dict[str, Any]
    example_input: Any
    epochs: int
    batches_per_epoch: int
    start_epoch: int = 0
    resume_run_id: str | None = None
    resume_state: checkpoints.TrainState | None = None
    distributed_job: tuple[str, bytes] | None = None  # (backend, pickled job) for devices > 1

    def initial_weights(self, run_id: str) -> Path:
        """Where the weights the run started from are kept (for reproducing it)."""
        return self.checkpoint_root / run_id / INITIAL_WEIGHTS

    def save_initial(self, model: Any, run_id: str) -> None:
        """Keep the weights ``model`` starts training from (what ``%reproduce`` retrains from).

        Every placement calls it before training a fresh run: in the kernel, the module as the
        user passed it is what one process trains and what ``--devices N`` / ``--nodes``
        workers start from (DDP starts every rank from rank 0's copy of it).
        """
        from ..store.serialize import untie

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        checkpoints.write_tensors(self.initial_weights(run_id), untie(state))

    def restore_start(self, model: Any, run_id: str) -> None:
        """Put back into ``model`` the weights this training started from: the initial weights
        of a fresh run, the checkpoint's for a resumed one (after a divergence)."""
        if self.resume_state is not None:
            model.load_state_dict(self.resume_state.model)
            return
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(self.initial_weights(run_id))))

    def extra_files(self, run_id: str) -> dict[str, Path]:
        path = self.initial_weights(run_id)
        return {INITIAL_WEIGHTS: path} if path.exists() else {}

    def resume_hint(self, run_id: str, outcome: Any) -> str:
        done = outcome.checkpoint_epoch  # 0-based index of the last checkpointed epoch
        if done is None:
            return (f"stopped after epoch {outcome.epochs_completed} with no checkpoint to "
                    "resume from; train again")
        return (f"stopped after epoch {outcome.epochs_completed}; to continue from epoch "
                f"{done + 2} run the same line with --resume {run_id}")


@dataclass
class TorchOutcome:
    status: str
    history: list[dict[str, float]]
    metrics: dict[str, float]
    epochs_completed: int
    best_epoch: int | None
    stopped_early: bool
    checkpoint: str | None
    checkpoint_epoch: int | None
    notes: list[str] = field(default_factory=list)
    records: bool = True  # False on a worker node of a multi-node run (rank 0's node records)
    diverged: str | None = None  # status "diverged": what was not finite ("loss is NaN" ...)
    diverged_epoch: int | None = None  # the 1-based epoch at whose end it was found
    parameters: Any = None  # finetune.ParameterCounts: trainable and total when training began
