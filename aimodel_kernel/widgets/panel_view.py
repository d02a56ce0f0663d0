"""The experiment panel's widgets and layout, its live progress box, and its text view."""

from __future__ import annotations

from html import escape
from typing import Any

from ..display.mime import mime_type, png_base64
from ..display.tables import wrap_html
from ..engine.core.events import TrainingEnd
from .progress import TrainingProgress

MAX_TEXT_PARAMS = 16


def build_controls(panel: Any) -> None:
    """Create the panel's widgets as attributes of ``panel``, wire them, and lay them out in
    ``panel.view``; ``panel._owned`` lists them (closed by *Done*)."""
    import ipywidgets as w

    wide, narrow = w.Layout(width="300px"), w.Layout(width="200px")
    panel.model_choice = w.Dropdown(description="model", layout=wide)
    panel.X_choice = w.Dropdown(description="X", layout=wide)
    panel.y_choice = w.Dropdown(description="y", layout=wide)
    panel.X_val_choice = w.Dropdown(description="X val", layout=wide)
    panel.y_val_choice = w.Dropdown(description="y val", layout=wide)
    panel.name_text = w.Text(description="name", placeholder="register as (optional)",
                             layout=wide)
    panel.refresh_button = w.Button(description="Refresh", icon="refresh",
                                    tooltip="list the notebook's models and data again")
    panel.sweep_mode = w.Checkbox(description="sweep", value=False, indent=False,
                                  layout=w.Layout(width="90px"))
    panel.sampling = w.Dropdown(description="runs", options=["grid", "random"], value="grid",
                                layout=narrow)
    panel.n_runs = w.IntText(description="sample", value=10, layout=narrow)
    panel.sweep_seed = w.IntText(description="seed", value=0, layout=narrow)
    panel.sweep_controls = w.HBox([panel.sampling, panel.n_runs, panel.sweep_seed],
                                  layout=w.Layout(display="none"))
    panel.train_button = w.Button(description="Train", button_style="primary", icon="play")
    panel.stop_button = w.Button(description="Stop", button_style="danger", icon="stop",
                                 disabled=True)
    panel.done_button = w.Button(description="Done", icon="check",
                                 tooltip="replace the panel by its static summary")
    panel.status = w.HTML()
    panel.params_box = w.VBox()
    panel.progress_box = w.VBox()
    panel.output = w.Output()

    panel.model_choice.observe(panel._on_model, names="value")
    panel.X_choice.observe(panel._on_X, names="value")
    panel.X_val_choice.observe(panel._on_X_val, names="value")
    panel.sweep_mode.observe(panel._on_sweep_mode, names="value")
    panel.refresh_button.on_click(panel.refresh)
    panel.train_button.on_click(panel._on_train)
    panel.stop_button.on_click(panel._on_stop)
    panel.done_button.on_click(panel.close)

    data = w.VBox([w.HBox([panel.model_choice, panel.refresh_button]),
                   w.HBox([panel.X_choice, panel.y_choice]),
                   w.HBox([panel.X_val_choice, panel.y_val_choice]), panel.name_text])
    params = w.Accordion(children=[panel.params_box], titles=("hyperparameters",))
    actions = w.HBox([panel.train_button, panel.stop_button, panel.sweep_mode,
                      panel.done_button])
    panel.view = w.VBox([w.HTML("<b>Experiment</b>"), data, params, actions,
                         panel.sweep_controls, panel.status, panel.progress_box, panel.output,
                         panel.leaderboard.view])
    lb = panel.leaderboard
    panel._owned = [panel.model_choice, panel.X_choice, panel.y_choice, panel.X_val_choice,
                    panel.y_val_choice, panel.name_text, panel.refresh_button, panel.sweep_mode,
                    panel.sampling, panel.n_runs, panel.sweep_seed, panel.sweep_controls,
                    panel.train_button, panel.stop_button, panel.done_button, panel.status,
                    panel.params_box, panel.progress_box, panel.output, data, params, actions,
                    lb.summary, lb.table, lb.sort_by, lb.select, lb.diff_output, lb.view]


class PanelProgress(TrainingProgress):
    """:class:`TrainingProgress` drawn inside the panel's progress box instead of the cell."""

    def __init__(self, box: Any, *, interval: float = 0.2, title: str = "training") -> None:
        super().__init__(interval=interval, widget=True, title=title)
        self._box = box

    def _channel(self, method: str, *args: Any) -> None:
        """Tell the kernel status channel of :class:`TrainingProgress`, where there is one."""
        channel = getattr(self, "status", None)
        if channel is not None and hasattr(channel, method):
            getattr(channel, method)(*args)

    def _open(self) -> None:
        import ipywidgets as w

        self._channel("start", self.start_epoch, self.epochs)
        for old in self._box.children:
            old.close()
        self._bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description=self.title[:20],
                                    layout=w.Layout(width="320px"))
        self._label = w.HTML()
        self._curve = w.HTML()
        self._view = w.VBox([w.HBox([self._bar, self._label]), self._curve])
        self._box.children = (self._view,)

    def _close(self, event: TrainingEnd) -> None:
        import ipywidgets as w

        line = self.status_line()
        summary = f"{self.title}: {event.status} — {line}"
        self._channel("end", self.epoch, self.epochs, self._fraction(), line, event.status)
        old = self._view
        self._box.children = (w.HTML(f"<code>{escape(summary)}</code>"),)
        if old is not None:
            for widget in (self._bar, self._label, self._curve, *old.children, old):
                widget.close()
        self._view = None


def _form_lines(form: Any) -> list[str]:
    if form is None:
        return []
    items = [f"{form.specs[k].label}={v!r}" for k, v in form.values().items()]
    more = len(items) - MAX_TEXT_PARAMS
    shown = items[:MAX_TEXT_PARAMS] + ([f"… {more} more"] if more > 0 else [])
    return ["  " + ", ".join(shown)]


def text_view(panel: Any) -> str:
    """The panel as text: the choices, the parameters, how to drive it, the last result."""
    def choice(dropdown: Any) -> str:
        options = [str(o) for o in dropdown.options]
        return f"{dropdown.value}  (of {', '.join(options) or 'none found'})"

    lines = ["Experiment panel" + ("" if panel.use_widget else
                                   " (no widget frontend: drive it from Python)"),
             f"  model: {choice(panel.model_choice)}",
             f"  X: {choice(panel.X_choice)}", f"  y: {choice(panel.y_choice)}",
             f"  validation: {panel.X_val_choice.value} {panel.y_val_choice.value}",
             f"  name: {panel.name_text.value or '(not registered)'}"]
    if panel.model_form is not None:
        lines += ["parameters:", *_form_lines(panel.model_form)]
    if panel.options_form is not None:
        lines += ["training options:", *_form_lines(panel.options_form)]
    if not panel.use_widget:
        lines += ["use: p = %experiment clf X y;  p.set(C=0.5).train()  or  "
                  "p.set_sweep(C='0.01, 0.1, 1').train();  p.stop()"]
    if panel.reports:
        lines += ["last: " + panel.reports[0].summary_line()]
    return "\n".join(lines)


def static_bundle(panel: Any) -> dict[str, Any]:
    """The panel's summary for saved notebooks: the last reports' text, their HTML (tables with
    the plots inlined) and the first PNG; once *Done*, also the main report's JSON payload."""
    head = "Experiment panel"
    if panel.job is not None:
        head += f": {panel.job.model_name} on {panel.job.X_name}"
    if not panel.reports:
        head += " (nothing trained yet)"
        return {"text/plain": head,
                "text/html": wrap_html(f'<div class="summary">{escape(head)}</div>')}
    bundle = {
        "text/plain": "\n\n".join([head, *(r.text() for r in panel.reports)]),
        "text/html": wrap_html(f'<div class="summary">{escape(head)}</div>')
        + "".join(r.html() for r in panel.reports),
    }
    png = next((p for p in (r.png() for r in panel.reports) if p), None)
    if png:
        bundle["image/png"] = png_base64(png)
    if panel.closed:
        main = panel.reports[0]
        bundle[mime_type(main.kind)] = main.payload()
    return bundle
