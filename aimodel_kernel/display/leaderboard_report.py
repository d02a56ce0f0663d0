"""The leaderboard of a sweep: one row per run (version, swept values, metrics), best first."""

from __future__ import annotations

from html import escape
from typing import Any, ClassVar

from ..engine.core.metric_names import MACHINE_METRICS
from ..engine.training.sweep import RANKING, SweepResult, Trial
from . import view
from .plots import new_figure, to_png
from .report import Report
from .tables import fmt, html_table, text_table

_BAD = ("failed", "interrupted")


def param_labels(keys: list[str]) -> dict[str, str]:
    """Column titles for swept keys: ``C`` for ``model.C`` unless two keys share that name."""
    short = {k: k.partition(".")[2] or k for k in keys}
    clashes = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {k: (k if s in clashes else s) for k, s in short.items()}


def value_text(value: Any) -> str:
    return "None" if value is None else fmt(value) if isinstance(value, float) else str(value)


class LeaderboardReport(Report):
    """Renders a :class:`~..engine.training.sweep.SweepResult`, ranked by its metric."""

    kind: ClassVar[str] = "leaderboard"
    title: ClassVar[str] = "Leaderboard"

    # -- pieces --------------------------------------------------------------------------------
    def metric_keys(self) -> list[str]:
        """Metrics shown: the ranking metric, the usual headline ones, others, timings last."""
        r: SweepResult = self.result
        seen = {k for t in r.trials for k in t.metrics}
        first, _ = r.ranking()
        order = [first] if first else []
        order += [k for k in RANKING if k in seen and k not in order]
        order += sorted(k for k in seen if k not in order and k not in MACHINE_METRICS)
        order += [k for k in MACHINE_METRICS if k in seen and k not in order]
        return order

    def header(self) -> list[str]:
        labels = param_labels(list(self.result.space))
        return ["#", "version", "status", *labels.values(), *self.metric_keys()]

    def _cells(self, trial: Trial, best: Trial | None) -> list[Any]:
        key, _ = self.result.ranking()
        where = trial.ref or (trial.run_id[:8] if trial.run_id else "")
        status: Any = trial.status
        if trial.status in _BAD:
            status = view.cell(trial.status, status="bad")
        row: list[Any] = [trial.index, where, status]
        row += [value_text(trial.params.get(k)) for k in self.result.space]
        for name in self.metric_keys():
            value = trial.metrics.get(name)
            if value is not None and name == key and trial is best:
                row.append(view.cell(value, fmt(value), "good"))
            else:
                row.append(value)
        return row

    def rows(self) -> list[list[Any]]:
        """Best first (see :meth:`SweepResult.ranked`); rich cells mark the best and failures."""
        best = self.result.best()
        return [self._cells(t, best) for t in self.result.ranked()]

    @staticmethod
    def plain_rows(rows: list[list[Any]]) -> list[list[Any]]:
        """Rows with each rich cell replaced by its value (what sorting and copying use)."""
        return [[c["value"] if isinstance(c, dict) else c for c in row] for row in rows]

    # -- the structured view -------------------------------------------------------------------
    def summary(self) -> str:
        r: SweepResult = self.result
        total, done = len(r.trials), len(r.finished)
        swept = ", ".join(param_labels(list(r.space)).values()) or "nothing"
        how = "grid" if r.mode == "grid" else f"random sample (seed {r.seed})"
        head = f"{done} of {total} runs finished" + (f" for {r.name}" if r.name else "")
        head += f" ({how} over {swept})"
        if r.stopped:
            head += "; stopped"
        best = r.best()
        key, _ = r.ranking()
        if best is not None and key:
            chosen = ", ".join(f"{label}={value_text(best.params.get(k))}"
                               for k, label in param_labels(list(r.space)).items())
            head += (f"; best {best.ref or f'run {best.index}'}: {key} "
                     f"{fmt(best.metrics[key])}" + (f" ({chosen})" if chosen else ""))
        return head

    def view_status(self) -> view.Status:
        r: SweepResult = self.result
        if r.trials and not r.finished and any(t.status == "failed" for t in r.trials):
            return "error"
        if r.stopped or any(t.status in _BAD for t in r.trials):
            return "warning"
        return "ok"

    def view_notes(self) -> list[str]:
        r: SweepResult = self.result
        out = list(r.notes)
        out += [f"run {t.index} failed: {t.error}" for t in r.trials if t.error]
        if sum(1 for t in r.trials if t.ref) >= 2:
            out.append("compare two versions with %diff A B (or select two rows in the panel)")
        return out

    def sections(self) -> list[view.Section]:
        return [view.table("Runs", self.header(), self.rows(), sortable=True)]

    # -- renderers -----------------------------------------------------------------------------
    def text(self) -> str:
        lines = [self.summary(), *self.view_notes()]
        if self.result.trials:
            lines += ["", text_table(self.header(), self.rows())]
        return "\n".join(lines)

    def html_body(self) -> str:
        parts = [f'<div class="summary">{escape(self.summary())}</div>']
        parts += [f'<div class="note">{escape(n)}</div>' for n in self.view_notes()]
        if self.result.trials:
            parts.append(html_table(self.header(), self.rows(), sortable=True))
        return "".join(parts)

    def figure_png(self) -> bytes | None:
        """The ranking metric per finished run, the best one highlighted."""
        r: SweepResult = self.result
        key, higher = r.ranking()
        done = r.finished
        if key is None or len(done) < 2:
            return None
        best = r.best()
        fig, axes = new_figure(size=(max(3.2, 0.45 * len(done) + 1.5), 2.8))
        ax = axes[0]
        labels = [t.ref or f"run {t.index}" for t in done]
        values = [t.metrics[key] for t in done]
        colours = ["tab:green" if t is best else "tab:blue" for t in done]
        ax.bar(range(len(done)), values, color=colours)
        ax.set_xticks(range(len(done)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{key} ({'higher' if higher else 'lower'} is better)", fontsize=9)
        low, high = min(values), max(values)
        pad = (high - low) * 0.15 or abs(high) * 0.05 or 0.05
        ax.set_ylim(low - pad if low - pad > 0 or low < 0 else 0, high + pad)
        return to_png(fig)
