"""Flags that several magics share, each defined once (IPython's own ``magic_gui_arg`` pattern in
``IPython/core/magics/pylab.py``: one decorator object, applied to several magics).

Apply one as it is (``@no_log_arg``), or, where the flag means something else for that magic,
with the keywords that differ (``@no_log_arg.but(help="do not log the diff on B's run")``).
Choices come from the engine's constants (:mod:`aimodel_kernel.engine.core.options`, which imports
nothing heavy), and every ``%train`` flag that sets a :class:`TrainConfig` field is made by
:func:`train_option` from the engine's table of those flags (:data:`~..engine.options.FLAGS`).
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument

from ..engine.core.options import FLAG_OF, TASK_CHOICES

__all__ = ["SharedArgument", "ci_arg", "model_arg", "n_boot_arg", "name_arg", "no_log_arg",
           "seed_arg", "task_arg", "train_option"]


class SharedArgument(argument):
    """An ``argument`` decorator built once and applied to the magics that take this flag."""

    def but(self, **changes: Any) -> argument:
        """The same flag with some keywords changed: a help text where the flag's meaning
        differs for this magic, another default, a subset of the choices."""
        return argument(*self.args, **{**self.kwds, **changes})


model_arg = SharedArgument("model", help="a trained model from the namespace")
name_arg = SharedArgument("--name", help="register the trained model as a new version of NAME")
task_arg = SharedArgument("--task", choices=TASK_CHOICES,
                          help="the task (default: inferred from y)")
seed_arg = SharedArgument("--seed", type=int,
                          help="seed for the split, shuffling and initial state")
ci_arg = SharedArgument("--ci", action="store_true",
                        help="bootstrap 95%% intervals of the metrics")
n_boot_arg = SharedArgument("--n-boot", type=int, default=200,
                            help="bootstrap resamples for --ci (200)")
no_log_arg = SharedArgument("--no-log", action="store_true",
                            help="do not log to the model's MLflow run")


def train_option(field: str, help: str, **kwargs: Any) -> argument:
    """The ``%train`` flag of the :class:`TrainConfig` field ``field``: its name, value type,
    choices and switch action from the engine's table; ``kwargs`` add argparse details
    (``metavar``, ``nargs``, ``const``)."""
    flag = FLAG_OF[field]
    if flag.kind in ("switch", "off"):
        kwargs.setdefault("action", "store_true")
    elif flag.kind == "choice":
        kwargs.setdefault("choices", flag.choices)
    elif flag.value_type is not None:
        kwargs.setdefault("type", flag.value_type)
    return argument(flag.flag, help=help, **kwargs)
