"""``%load_ext aimodel_kernel`` is instant: no heavy package is imported until a magic needs it."""

from __future__ import annotations

import json
import subprocess
import textwrap

from conftest import PYTHON, subprocess_env

HEAVY = ("torch", "mlflow", "sklearn", "shap", "onnx", "onnxruntime", "matplotlib", "pandas")


def test_load_ext_imports_nothing_heavy(tmp_path):
    script = textwrap.dedent(f"""
        import json, sys
        from IPython.core.interactiveshell import InteractiveShell

        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "aimodel_kernel")
        heavy = {HEAVY!r}
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
        magics = sorted(ip.magics_manager.magics["line"])
        print(json.dumps({{"loaded": loaded,
                          "magics": [m for m in ("train", "evaluate", "versions")
                                     if m in magics]}}))
    """)
    done = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(AIMODEL_HOME=str(tmp_path / ".aimodel")),
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["magics"] == ["train", "evaluate", "versions"]
    assert out["loaded"] == []
    assert not (tmp_path / ".aimodel").exists()  # no store is opened either


def test_server_extension_and_panels_import_nothing_heavy(tmp_path):
    """Jupyter server start-up loads the handlers; a kernel imports the widgets' modules."""
    script = textwrap.dedent(f"""
        import json, sys
        import aimodel_kernel.server.handlers, aimodel_kernel.widgets.experiment
        import aimodel_kernel.widgets.kernel_status
        heavy = {HEAVY!r}
        print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))))
    """)
    done = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
