"""``%experiment``: a panel to pick a model and data from the notebook, set hyperparameters,
train (or sweep) and compare, recorded exactly like ``%train``.

**Responsiveness.** A widget's click handler runs on the kernel's main thread, inside the
handling of one comm message; while it runs, the kernel reads no other message, so a Stop click
would wait until training ended. Training therefore runs on a background thread: the Train
handler checks the input, starts the thread and returns, and the kernel stays free to deliver
the Stop click, which sets the engine's :class:`StopFlag` (a ``threading.Event``). The runner
checks it before every sweep run and ``train()`` checks it after every PyTorch batch. Widget
updates from that thread are trait assignments that ipykernel sends through its thread-safe
IOPub socket (as tqdm's notebook bar does); results go into ``Output`` widgets by setting their
``outputs`` state, never by capturing (which depends on the message being handled). Pumping the
kernel's queue from inside the handler instead would depend on ipykernel internals (its
``do_one_iteration`` changed with ipykernel 7's async loop) and run other cells' messages
re-entrantly. Without a widget frontend (a terminal, a test) training runs in the caller's
thread and Ctrl-C stops it as in ``%train``. While the panel trains, other cells can run; do
not train the same model object from a cell at the same time.

**Saved notebooks.** The panel is displayed with a display id, as one output that holds the
live widget and a static summary (HTML tables with the plot inlined, and a PNG), updated after
every training: JupyterLab shows the widget, nbconvert and GitHub the summary. *Done* replaces
the widget by the summary for good (as :class:`TrainingProgress` does at the end of training).
"""

from __future__ import annotations

import threading
import traceback
from html import escape
from typing import Any

from ..engine.core.errors import AimodelError, InputError
from ..engine.core.events import StopFlag, ignore_event
from ..engine.store.serialize import framework_of
from ..engine.training.sweep import run_sweep
from . import namespace
from .jobs import NONE, Job, evaluate_on_validation, prepare_job, train_single, train_trial
from .panel_view import PanelProgress, build_controls, static_bundle, text_view
from .params import ParamForm, sklearn_specs, training_specs
from .progress import TrainingProgress, widget_frontend_likely
from .sweep import Leaderboard


class ExperimentPanel:
    """The experiment panel. Build it with ``%experiment``; drive it by clicking, or from Python.

    Parameters
    ----------
    shell : InteractiveShell
        Its ``user_ns`` is where models and data are listed from.
    settings : Settings, optional
        Store location (``%config AimodelMagics...``); the defaults otherwise.
    widget : bool, optional
        Show widgets (default: when a widget frontend is likely) or the text view.
    background : bool, optional
        Train on a background thread (default: with widgets), so Stop works while training.
    interval : float
        Seconds between live progress updates.
    """

    def __init__(self, shell: Any, *, settings: Any = None, widget: bool | None = None,
                 background: bool | None = None, interval: float = 0.2) -> None:
        self.shell = shell
        self.settings = settings
        self.use_widget = widget_frontend_likely() if widget is None else widget
        self.background = self.use_widget if background is None else background
        self.interval = interval
        self.stop_flag = StopFlag()
        self.running = False
        self.closed = False
        self.error: str | None = None
        self.message = ""  # the status line's text
        self.traceback: str | None = None  # of an unexpected error in a training
        self.reports: list[Any] = []  # the last result: train (+ evaluation), or leaderboard
        self.job: Job | None = None
        self._form_of_model: int | None = None  # id() of the object the forms were built for
        self.model_form: ParamForm | None = None
        self.options_form: ParamForm | None = None
        self._thread: threading.Thread | None = None
        self._handle: Any = None
        self.leaderboard = Leaderboard(self._diff)
        build_controls(self)  # the widgets, laid out in self.view
        self.refresh()

    # -- the namespace ------------------------------------------------------------------------
    @property
    def ns(self) -> dict[str, Any]:
        return self.shell.user_ns

    def refresh(self, _: Any = None) -> None:
        """List the notebook's models and data again (keeping the choices still valid)."""
        ns = self.ns
        _options(self.model_choice, namespace.models(ns))  # a new choice rebuilds the forms
        _options(self.X_choice, namespace.features(ns))
        _options(self.X_val_choice, [NONE, *namespace.features(ns, min_rows=1)])
        self._on_X()
        self._on_X_val()
        if id(ns.get(self.model_choice.value)) != self._form_of_model:  # a new object
            self._on_model()

    def _on_X(self, _: Any = None) -> None:
        X = self.ns.get(self.X_choice.value) if self.X_choice.value else None
        if X is not None and namespace.is_dataset(X):
            _options(self.y_choice, [NONE])
        else:
            n = namespace.rows_of(X) if X is not None else None
            _options(self.y_choice, namespace.targets(self.ns, n))

    def _on_X_val(self, _: Any = None) -> None:
        X = self.ns.get(self.X_val_choice.value) if self.X_val_choice.value != NONE else None
        if X is None or namespace.is_dataset(X):
            _options(self.y_val_choice, [NONE])
        else:
            _options(self.y_val_choice, namespace.targets(self.ns, namespace.rows_of(X)))

    def _on_model(self, _: Any = None) -> None:
        """Build the parameter widgets for the chosen model."""
        name = self.model_choice.value
        model = self.ns.get(name) if name else None
        forms: list[ParamForm] = []
        for old in self._forms():
            old.close()
        self.model_form = self.options_form = None
        self._form_of_model = id(model) if model is not None else None
        if model is not None:
            framework = framework_of(model)
            if framework == "sklearn":
                self.model_form = ParamForm(sklearn_specs(model), f"{name} parameters")
                forms.append(self.model_form)
            self.options_form = ParamForm(training_specs(framework), "training options")
            forms.append(self.options_form)
        self.params_box.children = tuple(f.view for f in forms)
        self._on_sweep_mode()

    def _on_sweep_mode(self, _: Any = None) -> None:
        on = self.sweep_mode.value
        for form in (self.model_form, self.options_form):
            if form is not None:
                form.show_sweep(on)
        self.sweep_controls.layout.display = "" if on else "none"

    # -- from Python ---------------------------------------------------------------------------
    def _forms(self) -> list[ParamForm]:
        return [f for f in (self.model_form, self.options_form) if f is not None]

    def _form_of(self, name: str) -> ParamForm:
        errors = []
        for form in self._forms():
            try:
                form.key_of(name)
                return form
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if errors else "choose a model first")

    def set(self, **values: Any) -> ExperimentPanel:
        """Set parameters by name: ``panel.set(C=0.5, seed=3)`` (model parameters first)."""
        for name, value in values.items():
            self._form_of(name).set(**{name: value})
        return self

    def set_sweep(self, **texts: str) -> ExperimentPanel:
        """Sweep parameters: ``panel.set_sweep(C="0.01, 0.1, 1", max_iter="100:300:100")``."""
        self.sweep_mode.value = True
        for name, text in texts.items():
            self._form_of(name).set_sweep(**{name: text})
        return self

    def train(self, wait: bool = True, timeout: float | None = None) -> ExperimentPanel:
        """Press Train (and wait for the training or sweep to end)."""
        self.train_button.click()
        if wait:
            self.wait(timeout)
        return self

    def stop(self) -> None:
        """Press Stop: no new sweep run starts; a PyTorch run ends after its current batch."""
        self.stop_button.click()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background training to end; ``True`` when nothing is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    @property
    def models(self) -> dict[int, Any]:
        """The models a sweep trained, by run number (the notebook's object is not among them)."""
        return self.job.models if self.job is not None else {}

    # -- Train --------------------------------------------------------------------------------
    def _on_train(self, _: Any = None) -> None:
        if self.running:
            self._say("already training; press Stop first", "warning")
            return
        try:
            job = prepare_job(self)
        except AimodelError as exc:
            self._say(str(exc), "error")
            return
        self.job, self.error = job, None
        self.stop_flag.clear()
        self.running = True
        self.train_button.disabled, self.stop_button.disabled = True, False
        if self.background:
            self._thread = threading.Thread(target=self._run, args=(job,), daemon=True,
                                            name="aimodel-experiment")
            self._thread.start()
        else:
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            if job.sweep is not None:
                self._run_sweep(job)
            else:
                self._run_single(job)
        except AimodelError as exc:
            self.error = str(exc)
            self._say(str(exc), "error")
        except BaseException as exc:  # a bug: keep the traceback on the panel
            self.error = f"{type(exc).__name__}: {exc}"
            self.traceback = traceback.format_exc()
            self._say(f"training failed: {self.error}", "error")
            if not self.background:
                raise
        finally:
            self.running = False
            self.train_button.disabled, self.stop_button.disabled = False, True
            self._refresh_display()

    def _progress(self, job: Job, title: str) -> Any:
        if job.framework != "torch":
            return None
        if self.use_widget:
            return PanelProgress(self.progress_box, interval=self.interval, title=title)
        return TrainingProgress(widget=False, interval=self.interval, title=title)

    def _run_single(self, job: Job) -> None:
        from ..display.train_report import TrainReport

        self._say(f"training {job.model_name}…")
        progress = self._progress(job, job.name or job.model_name)
        result = train_single(job, stop=self.stop_flag, settings=self.settings,
                              on_event=progress or ignore_event)
        self.reports = [TrainReport(result)]
        if result.status == "finished":
            self._say(f"training {job.model_name}: evaluating…" if job.val_data else "")
            evaluation = evaluate_on_validation(job, self.settings)
            if evaluation is not None:
                self.reports.append(evaluation)
        self._say(self.reports[0].summary_line(),
                  "ok" if result.status == "finished" else "warning")
        self._show_reports()

    def _run_sweep(self, job: Job) -> None:
        sweep = job.sweep
        assert sweep is not None
        total = len(sweep.trials)

        def train_one(trial: Any) -> Any:
            title = f"run {trial.index}/{total}"
            return train_trial(job, trial, stop=self.stop_flag, settings=self.settings,
                               on_event=self._progress(job, title) or ignore_event)

        def on_trial(trial: Any) -> None:
            if trial.status == "running":
                chosen = ", ".join(f"{k.partition('.')[2]}={v!r}" for k, v in trial.params.items())
                self._say(f"run {trial.index} of {total}: {chosen}…")
            self.leaderboard.update(sweep)

        self.leaderboard.update(sweep)
        run_sweep(sweep, train_one, stop=self.stop_flag, on_trial=on_trial)
        self.leaderboard.update(sweep)
        self.reports = [self.leaderboard.report]
        self._say(self.leaderboard.report.summary_line(),
                  "warning" if sweep.stopped else "ok")
        if not self.use_widget:
            _display(self.leaderboard.report)

    def _on_stop(self, _: Any = None) -> None:
        if self.running:
            self.stop_flag.set("stopped")
            self._say("stopping: no new run starts; a PyTorch run ends after its current batch",
                      "warning")

    # -- showing -------------------------------------------------------------------------------
    def _say(self, message: str, level: str = "ok") -> None:
        self.message = message
        colour = {"error": "#b00020", "warning": "#a05a00"}.get(level, "inherit")
        self.status.value = (f'<span style="color:{colour}">{escape(message)}</span>'
                             if message else "")
        if not self.use_widget and message and level != "ok":
            print(message)

    def _show_reports(self) -> None:
        if self.use_widget:
            self.output.outputs = ()
            for report in self.reports:
                self.output.append_display_data(report)
        else:
            for report in self.reports:
                _display(report)

    def _diff(self, a: str, b: str) -> Any:
        from ..display.diff_report import DiffReport
        from ..engine.versions.diff import diff_versions

        X, y = self.job.val_data if self.job and self.job.val_data else (None, None)
        return DiffReport(diff_versions(a, b, X=X, y=y, settings=self.settings, log=False))

    def static_bundle(self) -> dict[str, Any]:
        """What the saved notebook keeps: text, HTML (tables, plot inlined) and a PNG."""
        return static_bundle(self)

    def text(self) -> str:
        return text_view(self)

    def _bundle(self) -> dict[str, Any]:
        bundle = self.static_bundle()
        if not self.closed:  # the live widget, with the summary beside it for nbconvert/GitHub
            bundle.update(self.view._repr_mimebundle_())
            bundle["text/plain"] = self.text()
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not self.use_widget:
            display({"text/plain": self.text()}, raw=True)
        elif self._handle is None:
            self._handle = display(self._bundle(), raw=True, display_id=True)
        else:
            display(self._bundle(), raw=True, display_id=self._handle.display_id)

    def _refresh_display(self) -> None:
        if self._handle is not None and self.use_widget:
            self._handle.update(self._bundle(), raw=True)

    def close(self, _: Any = None) -> None:
        """*Done*: replace the live panel by its static summary and close its widgets."""
        if self.running:
            self._say("training is running; press Stop and wait before Done", "warning")
            return
        self.closed = True
        self._refresh_display()
        for form in self._forms():
            form.close()
        self.view.close()
        for widget in self._owned:
            widget.close()

    def __repr__(self) -> str:
        return self.text()


def _options(dropdown: Any, names: list[str]) -> None:
    keep = dropdown.value
    dropdown.options = names
    if keep in names:
        dropdown.value = keep
    elif names:
        dropdown.value = names[0]


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)
