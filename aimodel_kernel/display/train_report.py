"""How a training result reads in the cell: a summary line, metric tables and the loss curve."""

from __future__ import annotations

from html import escape
from typing import Any, ClassVar

from ..engine.core.metric_names import HEADLINE
from . import view
from .plots import new_figure, to_png
from .report import Report
from .tables import fmt, html_table, text_table

_CURVE_KEYS = ("loss", "val_loss")


class TrainReport(Report):
    """Renders :class:`~aimodel_kernel.engine.training.entry.TrainResult`."""

    kind: ClassVar[str] = "train"
    title: ClassVar[str] = "Training"

    def summary(self) -> str:
        r = self.result
        task = r.task.task
        if task == "multiclass":
            task += f", {r.task.n_classes} classes"
        if r.status == "interrupted":
            head = f"Interrupted {r.model_class} ({task}) after epoch {r.epochs_completed}"
        elif r.framework == "torch":
            head = f"Trained {r.model_class} ({task}) for {r.epochs_completed} epochs"
            if r.stopped_early:
                head += f", stopped early (best epoch {r.best_epoch})"
        else:
            head = f"Fitted {r.model_class} ({task})"
        head += f" in {r.seconds:.1f} s"
        shown = [(k, v) for k, v in r.metrics.items() if k in _HEADLINE]
        if shown:
            head += " — " + ", ".join(f"{k} {fmt(v)}" for k, v in shown)
        where = f"registered {r.ref}" if r.ref else "not registered (add --name to version it)"
        if r.status == "interrupted":
            where = "no version registered"
        return f"{head}; {where} (run {r.run_id[:8]})"

    def view_notes(self) -> list[str]:
        """The line to continue an interrupted run, then the result's notes."""
        r = self.result
        counts = getattr(r, "parameters", None)  # PyTorch: trainable vs total parameters
        trainable = ([f"{counts['trainable']:,} of {counts['total']:,} parameters trainable "
                      f"({100 * counts['trainable'] / max(counts['total'], 1):.2f} %)"]
                     if counts else [])
        return ([r.resume_hint] if r.resume_hint else []) + trainable + list(r.notes)

    def view_status(self) -> view.Status:
        """``warning`` when training was interrupted (no version registered)."""
        return "warning" if self.result.status == "interrupted" else "ok"

    def metric_rows(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of the final metrics."""
        return ["metric", "value"], [[k, v] for k, v in self.result.metrics.items()]

    def detail_rows(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of where the run, data and model files are."""
        r = self.result
        rows: list[list[Any]] = [
            ["run", r.run_id], ["seed", r.seed],
            ["data", f"{r.fingerprint['shape']} sha256 {r.fingerprint['sha256'][:12]}…"],
        ]
        if r.checkpoint:
            rows.append(["checkpoint", r.checkpoint])
        rows += [[name, digest[:16] + "…"] for name, digest in r.model_files.items()]
        return ["", ""], rows

    def sections(self) -> list[view.Section]:
        _, details = self.detail_rows()
        return [view.table("Metrics", *self.metric_rows()),
                view.table("Details", ["detail", "value"], details, sortable=False, open=False,
                           kinds=["text", "code"])]

    def text(self) -> str:
        lines = [self.summary(), *self.view_notes()]
        lines += ["", text_table(*self.metric_rows())]
        return "\n".join(lines)

    def html_body(self) -> str:
        parts = [f'<div class="summary">{escape(self.summary())}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in self.view_notes()]
        parts.append(html_table(*self.metric_rows()))
        parts.append(
            "<details><summary>details</summary>"
            + html_table(*self.detail_rows()) + "</details>"
        )
        return "".join(parts)

    def figure_png(self) -> bytes | None:
        history = self.result.history
        if len(history) < 2:
            return None
        acc = [h["val_accuracy"] for h in history if "val_accuracy" in h]
        fig, axes = new_figure(2 if acc else 1, size=(4.2, 2.8))
        epochs = [h["epoch"] for h in history]
        for key in _CURVE_KEYS:
            values = [h.get(key) for h in history]
            if all(v is not None for v in values):
                axes[0].plot(epochs, values, marker=".", label=key)
        axes[0].set_xlabel("epoch")
        axes[0].set_title("loss")
        axes[0].legend()
        if acc:
            axes[1].plot(epochs[-len(acc):], acc, marker=".", color="tab:green")
            axes[1].set_xlabel("epoch")
            axes[1].set_title("validation accuracy")
        return to_png(fig)


_HEADLINE = tuple(k for k in HEADLINE if not k.startswith("eval."))  # what training records
