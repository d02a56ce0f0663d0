"""The one package-version collector: what a run's ``environment.json`` and a lock file list.

Both list the installed versions of :data:`ALWAYS` and of every :data:`IF_IMPORTED` package the
process has imported, so a lock file written after training names the same packages as the
run it locks (plus any the caller needs recorded, such as a model file format's writer).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

ALWAYS = ("aimodel-kernel", "numpy", "scikit-learn", "mlflow")
IF_IMPORTED = {  # import name -> distribution name
    "torch": "torch", "pandas": "pandas", "scipy": "scipy", "shap": "shap",
    "fairlearn": "fairlearn", "onnx": "onnx", "onnxruntime": "onnxruntime",
    "onnxscript": "onnxscript", "skl2onnx": "skl2onnx", "skops": "skops",
    "safetensors": "safetensors", "lime": "lime", "matplotlib": "matplotlib",
    "xgboost": "xgboost", "lightgbm": "lightgbm", "transformers": "transformers",
    "peft": "peft", "IPython": "ipython",
}
FORMAT_PACKAGES = {"sklearn": ("skops",), "torch": ("torch", "safetensors"),
                   "onnx": ("onnx", "onnxscript", "onnxruntime", "skl2onnx")}
"""What writes each framework's model files: always recorded with a version of it."""


def packages_in_use(modules: Mapping[str, Any] | None = None,
                    extra: Iterable[str] = ()) -> dict[str, str]:
    """Installed versions of :data:`ALWAYS`, of the :data:`IF_IMPORTED` packages imported, and
    of ``extra`` distributions (absent ones omitted).

    Parameters
    ----------
    modules : mapping, optional
        The imported modules to look at; ``sys.modules`` by default.
    extra : iterable of str
        Distribution names recorded whether imported or not.

    Returns
    -------
    dict
        Distribution name to version, in a stable order.
    """
    modules = sys.modules if modules is None else modules
    names = [*ALWAYS, *(dist for mod, dist in IF_IMPORTED.items() if mod in modules), *extra]
    out: dict[str, str] = {}
    for name in dict.fromkeys(names):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def environment(extra: Iterable[str] = ()) -> dict[str, Any]:
    """A run's ``environment.json``: python and package versions, platform facts, and torch's
    threads / CUDA when torch is loaded."""
    env: dict[str, Any] = {
        "packages": {"python": platform.python_version(), **packages_in_use(extra=extra)},
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
    return env
