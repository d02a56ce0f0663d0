"""``%train``, ``%evaluate`` and ``%versions``: parse, resolve, call the engine, return a report."""

from __future__ import annotations

import re
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Float, List, Unicode

from .arguments import ci_arg, model_arg, n_boot_arg, name_arg, no_log_arg, seed_arg, task_arg
from .arguments import train_option as option
from .base import AimodelMagicsBase
from .resolve import parse, usage_errors


@magics_class
class AimodelMagics(AimodelMagicsBase):
    """The aimodel-kernel magics. Configure with ``%config AimodelMagics.home = 'path'``."""

    home = Unicode("", help="Store folder (default: .aimodel/ in the working directory)").tag(
        config=True)
    tracking_uri = Unicode("", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or "
                                    "the SQLite file in the store folder)").tag(config=True)
    progress_interval = Float(0.2, help="Seconds between live progress updates").tag(config=True)
    signing_key = Unicode("", help="Private key (PEM) that signs every version recorded "
                                   "(default: $AIMODEL_SIGNING_KEY)").tag(config=True)
    trusted_keys = List(Unicode(), default_value=None, allow_none=True,
                        help="Public keys (PEM files) whose signatures loading accepts "
                             "(default: $AIMODEL_TRUSTED_KEYS)").tag(config=True)
    require_signed = Bool(None, allow_none=True,
                          help="Refuse to load versions without a trusted signature "
                               "(default: $AIMODEL_REQUIRE_SIGNED)").tag(config=True)
    trusted_types = List(Unicode(), help="Extra classes a skops file may name, e.g. "
                                         "'xgboost.sklearn.XGBClassifier' (added to "
                                         "$AIMODEL_TRUSTED_TYPES)").tag(config=True)

    def _configured(self) -> Any:
        return self  # the traits %config sets are this class's own

    # -- %train ------------------------------------------------------------------------------
    @magic_arguments()
    @argument("model", help="the model: a scikit-learn estimator or a torch.nn.Module")
    @argument("X", help="training features (array, DataFrame, tensor, Dataset or DataLoader)")
    @argument("y", nargs="?", help="training targets (omit for a Dataset/DataLoader)")
    @name_arg
    @task_arg
    @option("epochs", help="PyTorch: passes over the data (default 10)")
    @option("batch_size", help="PyTorch: rows per step (default 64)")
    @option("lr", help="PyTorch: learning rate (default 1e-3)")
    @option("weight_decay", help="PyTorch: weight decay (default 0.01)")
    @option("optimizer", metavar="NAME",
            help="PyTorch: adamw (default), adam, sgd, rmsprop, or a factory in the notebook: "
                 "fn(params) -> torch.optim.Optimizer")
    @option("momentum", help="PyTorch: SGD momentum (default 0.9)")
    @option("loss", metavar="NAME",
            help="PyTorch: auto (the model's own loss when it computes one, else cross-entropy "
                 "for classes, MSE for regression), cross_entropy, bce, mse, l1, huber, or a "
                 "callable fn(predictions, target) / nn.Module in the notebook")
    @seed_arg
    @option("device", help="PyTorch: device")
    @option("devices", metavar="N",
            help="PyTorch: train on N worker processes (torch.distributed, DDP); --batch-size is "
                 "the global batch, split across them (a DataLoader's own batch_size is per "
                 "process)")
    @option("backend",
            help="PyTorch: torch.distributed backend for --devices (NCCL on GPUs, gloo on CPU)")
    @option("nodes", metavar="N",
            help="PyTorch: train across N machines, each running this line with --devices "
                 "processes (needs --rdzv and --seed)")
    @option("node_rank", metavar="R",
            help="PyTorch: this machine's node rank, 0..N-1; node 0 hosts the rendezvous "
                 "(global ranks are assigned by the rendezvous)")
    @option("rdzv", metavar="HOST:PORT",
            help="PyTorch: where node 0 hosts the c10d rendezvous for --nodes")
    @option("rdzv_id", metavar="ID",
            help="PyTorch: rendezvous id, the same on every node (default: derived from the "
                 "data, model and options)")
    @option("class_weight", help="weight classes by inverse frequency")
    @option("val", help="fraction of rows held out for validation")
    @argument("--val-data", nargs="+", metavar="NAME",
              help="explicit validation data: X_val y_val (or one Dataset/DataLoader)")
    @option("early_stop", metavar="PATIENCE",
            help="PyTorch: stop after PATIENCE epochs without improvement")
    @option("monitor", help="PyTorch: what --early-stop watches (default val_loss)")
    @option("deterministic",
            help="deterministic algorithms and seeding: same inputs give the same weights")
    @option("resume", nargs="?", const="last", metavar="RUN_ID",
            help="PyTorch: continue an interrupted run from its checkpoint")
    @option("checkpoint", help="PyTorch: no checkpoints")
    @option("checkpoint_every", metavar="SECONDS",
            help="PyTorch: seconds between checkpoint writes while training (5; 0: after every "
                 "epoch); an interrupt always writes the last completed epoch")
    @option("export", help="PyTorch: save weights only, no torch.export program")
    @option("export_script", metavar="PATH",
            help="PyTorch: write a torchrun script PATH (+ PATH's .job.pkl) that trains on "
                 "--devices processes and records the run, instead of training here")
    @option("lr_schedule", help="PyTorch: learning rate over the steps (default constant)")
    @option("warmup", metavar="FRACTION",
            help="PyTorch: fraction of the steps over which the learning rate rises from 0")
    @option("start_from", metavar="NAME/V",
            help="PyTorch: start from a recorded version's weights (the new version's parent)")
    @option("freeze", metavar="PATTERNS",
            help="PyTorch: freeze parameters whose names match these comma-separated globs "
                 "(e.g. 'bert.embeddings.*,bert.encoder.layer.[0-3].*')")
    @option("unfreeze_after", metavar="EPOCHS",
            help="PyTorch: train the --freeze parameters too after EPOCHS epochs")
    @option("lr_head", metavar="LR",
            help="PyTorch: learning rate of the task head (classifier, score, ...)")
    @option("lora", metavar="R",
            help="PyTorch: train rank-R LoRA adapters (PEFT) and the head instead of all weights")
    @option("lora_alpha", metavar="ALPHA", help="PyTorch: LoRA scaling (default 2R)")
    @option("lora_targets", metavar="NAMES",
            help="PyTorch: comma-separated module names LoRA adapts (default: the attention and "
                 "MLP Linear layers)")
    @option("merge", help="PyTorch: save the LoRA adapters merged into the weights")
    @option("precision",
            help="PyTorch: 32 (default), bf16-mixed (autocast over float32 weights), bf16-true "
                 "(bfloat16 weights), 16-mixed (GPUs: float16 autocast with a gradient scaler)")
    @option("grad_accum", metavar="N",
            help="PyTorch: split each step's --batch-size rows into N micro-batches (the "
                 "gradient is the whole step's)")
    @option("strategy",
            help="PyTorch, --devices: ddp (replicate, default) or fsdp (shard parameters, "
                 "gradients and optimizer state: FSDP2)")
    @option("blocks", metavar="CLASSES",
            help="PyTorch: class names of the blocks FSDP shards and activation checkpointing "
                 "wraps (default: detected transformer layers / repeated stack children)")
    @option("reshard_after_forward",
            help="PyTorch, fsdp: keep each block's gathered parameters until its backward")
    @option("cpu_offload", help="PyTorch, fsdp: keep shards and optimizer state in CPU memory")
    @option("activation_checkpointing",
            help="PyTorch: recompute each block's activations in the backward (less memory)")
    @option("compile", help="PyTorch: torch.compile the model before training")
    @option("eager_fallback",
            help="PyTorch, --compile: train uncompiled (with a note) if it cannot be compiled")
    @argument("--quiet", action="store_true", help="no live progress")
    @line_magic
    @usage_errors
    def train(self, line: str) -> Any:
        """Train MODEL on X, y in place and record it as an MLflow run (and a model version).

        The model object in the notebook ends up trained (a fitted estimator, or a module holding
        the trained weights). Progress shows live in the cell; Ctrl-C / the stop button ends
        PyTorch training after the current batch with the weights of the last completed epoch,
        and ``--resume`` continues it from its checkpoint.

        Examples
        --------
        ::

            %train clf X_train y_train --name cancer-rf
            %train net X_train y_train --epochs 20 --lr 1e-3 --batch-size 64 --val 0.2 \\
                --early-stop 3 --name digits-mlp
            %train net train_ds --epochs 5                      # a Dataset of (x, y) pairs
            %train net X y --epochs 20 --resume                # continue the last interrupted run
            %train net X y --seed 1 --nodes 2 --node-rank 0 --rdzv host0:29400   # on host0;
            %train net X y --seed 1 --nodes 2 --node-rank 1 --rdzv host0:29400   # on host1
            r = %train clf X y                                 # r.metrics, r.run_id, r.version
            %train net X y --devices 4 --export-script train.py  # then: torchrun ... train.py
        """
        from ..engine.core.events import TrainingEnd, ignore_event
        from ..engine.core.options import LOSSES, OPTIMIZERS, config_from_flags, torch_only_flags
        from ..engine.store.serialize import framework_of
        from ..engine.training.entry import train

        args = parse(self.train, line)
        model = self.resolve(args.model, "model")
        X = self.resolve(args.X, "X")
        y = self.resolve(args.y, "y") if args.y else None
        framework = framework_of(model)
        if framework == "sklearn":
            wrong = torch_only_flags(vars(args))
            if wrong:
                raise UsageError(f"{wrong[0]} applies to PyTorch models; {type(model).__name__} "
                                 "is a scikit-learn estimator (set its parameters instead)")
        for flag, builtin in (("loss", LOSSES), ("optimizer", OPTIMIZERS)):  # or a callable
            name = getattr(args, flag)
            if name is not None and name not in builtin:
                if name not in self.shell.user_ns:
                    raise UsageError(f"--{flag} {name!r} is neither one of "
                                     f"{', '.join(builtin)} nor defined in the notebook")
                if not callable(self.shell.user_ns[name]):
                    raise UsageError(f"--{flag} {name!r} is a "
                                     f"{type(self.shell.user_ns[name]).__name__}, not callable")
                setattr(args, flag, self.shell.user_ns[name])
        config = config_from_flags(vars(args))
        val_data = self._val_data(args.val_data)
        settings = self.settings()
        progress = None
        on_event = ignore_event
        if not args.quiet and framework == "torch" and not args.export_script:
            from ..widgets.progress import TrainingProgress

            progress = TrainingProgress(interval=settings.progress_interval,
                                        title=args.name or args.model)
            on_event = progress
        source = self.source("train", line)
        try:
            result = train(model, X, y, config, val_data=val_data, on_event=on_event,
                           source=source, settings=settings, names=(args.X, args.y or "y"))
        except BaseException as exc:
            if progress is not None and progress.opened:
                progress(TrainingEnd("failed", progress.epoch, str(exc)))
            raise
        if not hasattr(result, "status"):  # --export-script: an ExportReport, nothing trained
            return result
        if progress is None:
            from ..widgets.kernel_status import StatusChannel

            StatusChannel(args.name or args.model).announce(f"%train {line}".strip(),
                                                            str(result.status).upper())
        if result.status == "interrupted" and framework == "torch":
            clean = re.sub(r"\s--resume(\s+(?!-)\S+)?", "", line).strip()
            done = result.epochs_completed
            state = (f"{args.model} holds the weights of epoch {done}" if done
                     else f"{args.model} is unchanged (no epoch finished)")
            if done and result.checkpoint:
                result.resume_hint = (f"{state}. Continue with: %train {clean} "
                                      f"--resume {result.run_id}")
            else:
                result.resume_hint = (f"{state}; there is no checkpoint to resume from. "
                                      f"Train again with: %train {clean}")
        from ..display.train_report import TrainReport

        return TrainReport(result)

    def _val_data(self, names: list[str] | None) -> tuple[Any, Any] | None:
        if not names:
            return None
        if len(names) > 2:
            raise UsageError("--val-data takes X_val y_val (or one Dataset)")
        values = [self.resolve(n, "validation data") for n in names]
        return (values[0], values[1] if len(values) == 2 else None)

    # -- %evaluate ---------------------------------------------------------------------------
    @magic_arguments()
    @model_arg
    @argument("X", help="features to evaluate on")
    @argument("y", nargs="?", help="true targets (omit for a Dataset/DataLoader, or a dict X "
                                   "holding them under 'labels')")
    @task_arg.but(help="the task (default: from the model's training run, else inferred from y)")
    @argument("--cv", type=int, metavar="K",
              help="scikit-learn: K-fold cross-validation of a fresh clone (stratified for "
                   "classes)")
    @ci_arg
    @n_boot_arg
    @seed_arg.but(default=0, help="seed for --cv folds and --ci resamples")
    @no_log_arg
    @line_magic
    @usage_errors
    def evaluate(self, line: str) -> Any:
        """Evaluate MODEL on X, y: metrics, confusion matrix, curves; logged to its run.

        Classification: accuracy, balanced accuracy, precision / recall / F1 (per class, macro,
        weighted), ROC AUC, log loss, confusion matrix, ROC, precision-recall and calibration
        curves. Regression: MAE, RMSE, R², residual and predicted-vs-true plots. When MODEL came
        from ``%train``, the metrics (``eval.*``) and plots are logged to its run.

        Examples
        --------
        ::

            %evaluate clf X_test y_test
            r = %evaluate net X_test y_test          # r.metrics["accuracy"], r.to_dict()
            %evaluate clf X y --cv 5                 # cross-validated
            %evaluate clf X_test y_test --ci         # bootstrap confidence intervals
        """
        from ..display.evaluation_report import EvaluationReport
        from ..engine.evaluation.metrics import evaluate

        args = parse(self.evaluate, line)
        model = self.resolve(args.model, "model")
        X = self.resolve(args.X, "X")
        y = self.resolve(args.y, "y") if args.y else None
        result = evaluate(model, X, y, task=args.task or "auto", cv=args.cv, ci=args.ci,
                          n_boot=args.n_boot, seed=args.seed, log=not args.no_log,
                          name=args.model, x_name=args.X, y_name=args.y or "y")
        report = EvaluationReport(result)
        self.log_plots(result, report)
        return report

    # -- %workers ----------------------------------------------------------------------------
    @magic_arguments()
    @argument("action", nargs="?", choices=["status", "shutdown"], default="status")
    @line_magic
    def workers(self, line: str) -> str:
        """Show, or shut down, the warm pool of worker processes kept by ``%train --devices N``.

        The first ``--devices N`` call starts N processes; later calls with the same N reuse
        them. The pool also ends when the kernel exits, and after any failed job.

        Examples
        --------
        ::

            %workers
            %workers shutdown
        """
        args = parse(self.workers, line)
        import sys

        pool = sys.modules.get("aimodel_kernel.engine.training.distributed.pool")
        if pool is None:
            return "no worker pool (none started in this kernel)"
        if args.action == "shutdown":
            return "worker pool shut down" if pool.shutdown_pool() else "no worker pool running"
        status = pool.pool_status()
        if status is None:
            return "no worker pool running"
        return (f"worker pool: {status['devices']} processes ({status['backend']}), "
                f"{status['jobs']} job(s) run, {'alive' if status['alive'] else 'stopped'}")

    # -- %versions ---------------------------------------------------------------------------
    @magic_arguments()
    @argument("name", nargs="?", help="registered model name (all models when omitted)")
    @line_magic
    @usage_errors
    def versions(self, line: str) -> Any:
        """List the versions of a registered model (or of every model) in the store.

        Examples
        --------
        ::

            %versions digits-mlp
            %versions                                # every registered model
            v = %versions cancer-rf                  # v.versions[-1].metrics
        """
        from ..display.versions_report import VersionsReport
        from ..engine.store.registry import list_versions

        args = parse(self.versions, line)
        return VersionsReport(list_versions(args.name, settings=self.settings()))
