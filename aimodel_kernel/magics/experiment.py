"""``%experiment``: open the experiment panel (train, sweep, compare) in the cell."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .arguments import name_arg
from .base import AimodelMagicsBase
from .resolve import parse, usage_errors


@magics_class
class ExperimentMagics(AimodelMagicsBase):
    """The experiment panel."""

    @magic_arguments()
    @argument("model", nargs="?", help="preselect this model (default: the first one listed)")
    @argument("X", nargs="?", help="preselect the training features")
    @argument("y", nargs="?", help="preselect the training targets")
    @argument("--val-data", nargs="+", metavar="NAME", help="preselect X_val [y_val]")
    @name_arg.but(help="register every training as a version of NAME")  # a sweep: each run
    @argument("--sweep", action="store_true", help="open in sweep mode")
    @line_magic
    @usage_errors
    def experiment(self, line: str) -> Any:
        """Open a panel to train a model from the notebook, sweep its hyperparameters and
        compare the runs.

        The dropdowns list only suitable objects: estimators and ``torch.nn.Module``s; X with
        at least two rows; y of X's length. The hyperparameter widgets come from the
        estimator's ``get_params()`` (PyTorch: the training options). *Train* runs ``%train``
        on the chosen objects: the estimator itself is fitted with the panel's parameters and
        the run records the equivalent ``%train`` line. With validation data the evaluation
        follows. *Sweep* takes lists (``0.01, 0.1, 1``) or ranges (``1:10:3``, ``1e-4:1:*10``)
        in a parameter's sweep field and trains a copy per combination (the grid, or a seeded
        random sample), filling a leaderboard; select two rows to see their ``%diff``. *Stop*
        ends a sweep after the current run (a PyTorch run after its current batch). *Done*
        leaves a static summary in the notebook.

        Examples
        --------
        ::

            %experiment
            %experiment clf X_train y_train --val-data X_val y_val --name cancer
            p = %experiment net X y --sweep        # p.set_sweep(lr="1e-4:1e-2:*10").train()
            p                                      # shows the panel held in p
        """
        from ..widgets import namespace
        from ..widgets.experiment import ExperimentPanel

        args = parse(self.experiment, line)
        ns = self.shell.user_ns
        checks = (("model", args.model, namespace.models(ns)),
                  ("X", args.X, namespace.features(ns)),
                  ("y", args.y, None))
        for role, name, allowed in checks:
            if name is None:
                continue
            self.resolve(name, role)
            if not name.isidentifier():
                raise UsageError(f"{role} must be a variable name in the panel; assign "
                                 f"{name!r} to a variable first")
            if allowed is not None and name not in allowed:
                raise UsageError(_unsuitable(role, name))
        val = list(args.val_data or [])
        if len(val) > 2:
            raise UsageError("--val-data takes X_val and optionally y_val")
        for name in val:
            self.resolve(name, "validation data")
        if len(val) == 1 and not namespace.is_dataset(ns.get(val[0])):
            raise UsageError(f"--val-data {val[0]} needs its targets too: --val-data "
                             f"{val[0]} y_val")
        panel = ExperimentPanel(self.shell, settings=self.settings())
        _choose(panel.model_choice, args.model, "model")
        _choose(panel.X_choice, args.X, "X")
        _choose(panel.y_choice, args.y, "y")
        _choose(panel.X_val_choice, val[0] if val else None, "validation X")
        _choose(panel.y_val_choice, val[1] if len(val) > 1 else None, "validation y")
        if args.name:
            panel.name_text.value = args.name
        panel.sweep_mode.value = args.sweep
        return panel


def _unsuitable(role: str, name: str) -> str:
    what = {"model": "a scikit-learn estimator or torch.nn.Module",
            "X": "features with at least 2 rows (2-D array, DataFrame, tensor or Dataset)"}
    return f"{name!r} is not {what[role]}; pass one of the names the panel lists"


def _choose(dropdown: Any, name: str | None, role: str = "") -> None:
    if name is None:
        return
    if name not in dropdown.options:
        need = ("one value per row of X (a 1-D array, Series or tensor)" if role.endswith("y")
                else "an array, DataFrame, tensor or Dataset of rows")
        raise UsageError(f"{role} {name!r} does not fit here: it must be {need}")
    dropdown.value = name
