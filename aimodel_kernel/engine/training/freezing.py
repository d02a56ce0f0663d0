"""``--freeze PATTERNS`` and ``--unfreeze-after EPOCHS`` during one training: which parameters
stop training, when they train again, and the user's ``requires_grad`` flags given back after.
"""

from __future__ import annotations

from typing import Any

from ..core.options import TrainConfig
from . import finetune


class Freezing:
    """The parameters ``config.freeze`` stops (none without it), for one training of ``model``.

    :meth:`apply` freezes them (before the optimizer is made), :meth:`release` lets them train
    again (adding them to the optimizer as a new parameter group, scheduled like the others),
    :meth:`restore` gives every parameter the ``requires_grad`` flag it had before.
    """

    def __init__(self, model: Any, config: TrainConfig) -> None:
        self.config = config
        self.patterns = [p.strip() for p in (config.freeze or "").split(",") if p.strip()]
        self._flags = {name: p.requires_grad for name, p in model.named_parameters()}
        self.names: list[str] = []
        self.released = False

    def check(self, model: Any) -> None:
        """Refuse patterns matching nothing, or freezing everything (one-line errors), and
        leave ``model`` as it was."""
        if self.patterns:
            try:
                finetune.freeze(model, self.patterns)
            finally:
                self.restore(model)

    def apply(self, model: Any) -> None:
        if self.patterns:
            self.names = finetune.freeze(model, self.patterns)

    def due(self, epoch: int) -> bool:
        """Whether the frozen parameters train from ``epoch`` (0-based) on."""
        after = self.config.unfreeze_after
        return bool(self.names) and after is not None and epoch >= after and not self.released

    def release(self, model: Any, optimizer: Any, scheduler: Any = None) -> str:
        """Unfreeze, add the parameters to ``optimizer`` (at ``--lr``; a schedule applies to
        them too); a note saying so."""
        finetune.unfreeze(model, self.names)
        params = dict(model.named_parameters())
        group = {"params": [params[n] for n in self.names], "lr": self.config.lr,
                 "name": "unfrozen"}
        optimizer.add_param_group(group)
        if scheduler is not None:
            added = optimizer.param_groups[-1]
            added["initial_lr"] = self.config.lr
            scheduler.base_lrs.append(self.config.lr)
            scheduler.lr_lambdas.append(scheduler.lr_lambdas[0])
            added["lr"] = self.config.lr * scheduler.lr_lambdas[0](scheduler.last_epoch)
        self.released = True
        return (f"unfroze {len(self.names)} parameter tensors (--freeze) after epoch "
                f"{self.config.unfreeze_after}")

    def restore(self, model: Any) -> None:
        """Every parameter's ``requires_grad`` as it was when this object was made."""
        for name, p in model.named_parameters():
            if name in self._flags:
                p.requires_grad_(self._flags[name])
