"""``%compress``: smaller, faster variants of a trained model, verified against it."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..engine.core.options import QUANTIZATIONS
from .arguments import name_arg, no_log_arg
from .base import AimodelMagicsBase
from .resolve import parse, usage_errors


@magics_class
class CompressMagics(AimodelMagicsBase):
    """Pruning, int8 quantization and ONNX export with a verified size / latency / metric report."""

    @magic_arguments()
    @argument("model", help="a trained scikit-learn estimator or torch.nn.Module")
    @argument("--check", nargs="+", metavar="NAME",
              help="X y: rows every variant is verified and timed on (required; X alone "
                   "when it is a dict holding 'labels', a Dataset or a DataLoader)")
    @argument("--prune", type=float, metavar="AMOUNT",
              help="PyTorch: zero this fraction of the Linear/Conv weights (global magnitude)")
    @argument("--structured", type=float, metavar="AMOUNT",
              help="PyTorch: remove this fraction of each layer's neurons / channels")
    @argument("--quantize", choices=QUANTIZATIONS,
              help="onnxruntime static int8 quantization of each ONNX export")
    @argument("--onnx", action="store_true", help="add the float32 ONNX export of each model")
    @argument("--max-drop", type=float, metavar="D",
              help="largest metric drop the chosen variant may have (0.01 = 1 point; 0.01)")
    @name_arg.but(help="register the variants as versions of NAME (default: "
                       "<original name>-compressed)")
    @argument("--out", metavar="PATH",
              help="where the chosen ONNX file goes: a .onnx path or a folder "
                   "(default .aimodel/exports/)")
    @argument("--calibrate", metavar="X", help="rows to calibrate int8 on (default: --check X)")
    @argument("--threads", type=int, default=1,
              help="threads for every runtime while timing (1)")
    @argument("--repeats", type=int, default=30, help="timed calls per batch size (30)")
    @no_log_arg.but(help="record nothing in the store (the chosen ONNX file is still written)")
    @line_magic
    @usage_errors
    def compress(self, line: str) -> Any:
        """Build pruned, structured-pruned, ONNX and int8 ONNX variants of MODEL and verify each
        against it on the --check rows: output difference, prediction agreement, the task
        metric and its drop, file size, parameters / sparsity, and p50 / p95 latency at batch 1
        and 256 (same thread count for all). The fastest variant within --max-drop is written
        as an ONNX file for serving, and each variant is registered as a version whose parent
        is MODEL's version. Without a variant flag, --onnx --quantize int8 is built. A variant
        that fails shows its reason in its row; the others still complete.

        Examples
        --------
        ::

            %compress net --prune 0.5 --quantize int8 --onnx --check X_test y_test --name small
            %compress clf --onnx --check X_test y_test
            %compress net --structured 0.5 --max-drop 0.01 --check X_test y_test
            r = %compress net --check X_test y_test    # r.chosen, r.export_path, r.variants
        """
        from ..display.compress_report import CompressReport
        from ..engine.compression.entry import compress
        from ..engine.core.kinds import is_dataset, is_hf_dataset, is_loader

        args = parse(self.compress, line)
        if not args.check:
            raise UsageError("--check X y is required: every variant is verified against the "
                             f"original on those rows, e.g. %compress {args.model} --check "
                             "X_test y_test")
        if len(args.check) > 2:
            raise UsageError("--check takes X and y: --check X_test y_test")
        model = self.resolve(args.model, "model")
        X = self.resolve(args.check[0], "--check X")
        items = is_dataset(X) or is_loader(X) or is_hf_dataset(X)  # they yield their targets
        holds_labels = items or (isinstance(X, dict) and ("labels" in X or "label" in X))
        if len(args.check) == 1 and not holds_labels:  # a dict X may carry them (HF style)
            raise UsageError("--check takes X and y: --check X_test y_test")
        y = self.resolve(args.check[1], "--check y") if len(args.check) == 2 else None
        calibration = self.resolve(args.calibrate, "--calibrate") if args.calibrate else None
        result = compress(
            model, X, y, prune=args.prune, structured=args.structured, quantize=args.quantize,
            onnx=args.onnx, max_drop=args.max_drop, name=args.name, out=args.out,
            log=not args.no_log, threads=args.threads, repeats=args.repeats,
            calibration=calibration, settings=self.settings(), source=self.source("compress", line),
            names=(args.model, args.check[0],
                   args.check[1] if len(args.check) == 2 else
                   f"{args.check[0]}'s targets" if items else f"{args.check[0]}['labels']"))
        return CompressReport(result)
