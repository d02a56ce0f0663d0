"""``%load_ext aimodel_kernel`` is instant: no heavy package is imported until a magic needs it,
or, in a Jupyter kernel, until the warm-up imports them while the kernel is idle after the cell
(``engine/store/warmup.py``; off with ``AIMODEL_WARMUP=0``). No store is created by either.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest
from conftest import PYTHON, subprocess_env

HEAVY = ("torch", "mlflow", "sklearn", "shap", "onnx", "onnxruntime", "matplotlib", "pandas")
WARMED = ("mlflow", "sqlalchemy", "alembic", "sklearn", "skops")
"""What the warm-up imports for a first ``%train`` (``HEAVY`` lists what loading must not)."""


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


LOAD_CELL = ("%load_ext aimodel_kernel\n"
             "import sys\n"
             "from aimodel_kernel.engine.store import warmup\n"
             f"right_after = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
             "status_after = warmup.status()")


def _warm_up_in_a_kernel(cwd, env_extra: dict[str, str], idle_cells: int = 0) -> dict:
    """Run ``%load_ext`` in a real kernel, then let it idle until the warm-up is done."""
    import os
    import time

    from jupyter_client.manager import start_new_kernel
    from kernel_client import run, text_of, value

    env = subprocess_env(**env_extra)
    km, client = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)
    try:
        out = run(client, LOAD_CELL)
        assert "Error" not in text_of(out), text_of(out)
        found = {"right_after": value(client, "right_after"),
                 "status_after": value(client, "status_after")}
        deadline = time.monotonic() + 300
        while True:  # each little cell lets the kernel's loop run warm-up steps in between
            status = value(client, "warmup.status()")
            idle_cells -= 1
            if (status is None and idle_cells <= 0) or (status and status["finished"]):
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        found["status"] = status
        found["heavy"] = value(client, f"sorted({{m.split('.')[0] for m in sys.modules}} "
                                       f"& set({sorted(HEAVY + WARMED)!r}))")
        found["opened"] = value(client, "[s.uri for s in __import__('aimodel_kernel.engine.store"
                                        ".tracking', fromlist=['x'])._stores.values() "
                                        "if s._client is not None]")
        found["pid_cwd"] = value(client, "__import__('os').getcwd()")
        assert os.path.samefile(found["pid_cwd"], cwd)
        return found
    finally:
        km.shutdown_kernel(now=True)


@pytest.mark.parametrize("existing", [False, True], ids=["no store", "existing store"])
def test_the_warm_up_runs_after_load_ext_while_the_kernel_is_idle(tmp_path, template_db,
                                                                 existing):
    """In a real kernel: nothing heavy is imported and no warm-up step has run when
    ``%load_ext`` returns (its cell ends first); once the kernel is idle the steps import what a
    first ``%train`` needs, build the template once, open an existing store and create none."""
    cache, home = tmp_path / "cache", tmp_path / ".aimodel"
    if existing:
        home.mkdir()
        shutil.copyfile(template_db, home / "mlflow.db")
    found = _warm_up_in_a_kernel(tmp_path, {"AIMODEL_HOME": str(home),
                                            "AIMODEL_CACHE_DIR": str(cache),
                                            "AIMODEL_WARMUP": "1"})
    assert found["right_after"] == []
    assert found["status_after"]["done"] == 0 and found["status_after"]["steps"] >= 8
    assert found["status"]["finished"] and found["status"]["failed"] == [], found["status"]
    assert set(WARMED) <= set(found["heavy"]), found["heavy"]
    assert "torch" not in found["heavy"]  # skops is imported without it (fast_imports.py)
    assert [p.name for p in cache.glob("mlflow-*.db")]  # the template, built once per machine
    if existing:  # the store was opened (and switched to WAL mode), nothing more
        assert found["opened"] == [f"sqlite:///{home.resolve() / 'mlflow.db'}"]
    else:  # and none was created
        assert found["opened"] == [] and not home.exists()


def test_no_warm_up_when_turned_off(tmp_path):
    found = _warm_up_in_a_kernel(tmp_path, {"AIMODEL_HOME": str(tmp_path / ".aimodel"),
                                            "AIMODEL_CACHE_DIR": str(tmp_path / "cache"),
                                            "AIMODEL_WARMUP": "0"}, idle_cells=10)
    assert found["status_after"] is None and found["status"] is None
    assert found["right_after"] == [] and found["heavy"] == []
    assert not (tmp_path / "cache").exists() and not (tmp_path / ".aimodel").exists()


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
