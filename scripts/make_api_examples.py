"""Write real example bodies of the server extension's REST API to ``docs/api-examples/``.

``models.json`` (``GET /aimodel/api/models``), ``diff.json`` (``GET /aimodel/api/diff``) and
``error.json`` (the 404 body of a diff naming a version that does not exist) come from the
catalog functions the handlers call, on a temporary project folder whose ``.aimodel/`` store
holds two scikit-learn classifiers trained by the engine: ``cancer-lr`` (two versions of a
logistic regression on breast cancer, the second trained from the first and promoted to
``champion``) and ``iris-tree`` (a decision tree on iris). The folder is deleted afterwards.

So that a regeneration only changes what really changed, what differs from one run to the next
is replaced by stable placeholders: the temporary folder by :data:`ROOT_PLACEHOLDER`, run ids
by ``000...1``, ``000...2`` (in order of training), and version creation times by
:data:`CREATED_PLACEHOLDER` plus one minute per version. Measured times (``fit_seconds``, the
diff's ``timings``), package versions and the PNG's bytes may still change.

Run from the repository root::

    .venv/bin/python scripts/make_api_examples.py            # -> docs/api-examples/
    .venv/bin/python scripts/make_api_examples.py --out /tmp/examples

``tests/server/test_api_schema.py`` checks the files and imports :func:`build_examples`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.client import responses
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

OUT = REPO / "docs" / "api-examples"
BODIES = ("models", "diff", "error")
PROJECT = "proj"  # the notebook directory, relative to the server's root
ROOT_PLACEHOLDER = "/home/jovyan/work"  # stands for the temporary server root
CREATED_PLACEHOLDER = datetime(2025, 1, 2, 3, 4, 0, tzinfo=UTC)
MISSING_REF = "cancer-lr/9"


@contextlib.contextmanager
def temporary_root() -> Iterator[Path]:
    """A fresh temporary server root holding an empty ``proj/`` folder, the working directory
    while inside; ``AIMODEL_HOME`` and ``MLFLOW_TRACKING_URI`` are unset (the store is then
    ``proj/.aimodel/``, as for a kernel whose notebook is in ``proj/``). Everything is
    restored afterwards."""
    from aimodel_kernel.engine.store import tracking

    saved = {k: os.environ.pop(k, None) for k in ("AIMODEL_HOME", "MLFLOW_TRACKING_URI")}
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="aimodel-api-examples-") as tmp:
        root = Path(tmp).resolve()
        (root / PROJECT).mkdir()
        os.chdir(root / PROJECT)
        tracking._stores.clear()
        try:
            yield root
        finally:
            tracking._stores.clear()
            os.chdir(cwd)
            for key, value in saved.items():
                if value is not None:
                    os.environ[key] = value


def train_models(root: Path) -> list[str]:
    """Train and register the example models in the store of ``root/proj``.

    Returns
    -------
    list of str
        The references of the versions, in the order they were trained.
    """
    from sklearn.datasets import load_breast_cancer, load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from aimodel_kernel.engine.core.options import TrainConfig
    from aimodel_kernel.engine.store.registry import promote
    from aimodel_kernel.engine.training.entry import train
    from aimodel_kernel.server.store_location import settings_for

    settings = settings_for(root, PROJECT)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    config = TrainConfig(name="cancer-lr", seed=0, val=0.2)
    train(LogisticRegression(C=1.0, solver="liblinear"), X, y, config, settings=settings)
    train(LogisticRegression(C=0.05, solver="liblinear"), X, y, config, settings=settings,
          parent="cancer-lr/1")
    promote("cancer-lr/2", "champion", settings=settings)
    Xi, yi = load_iris(return_X_y=True, as_frame=True)
    train(DecisionTreeClassifier(max_depth=3, random_state=0), Xi, yi,
          TrainConfig(name="iris-tree", seed=0, val=0.2), settings=settings)
    return ["cancer-lr/1", "cancer-lr/2", "iris-tree/1"]


def build_examples(root: Path) -> dict[str, dict[str, Any]]:
    """The response bodies for ``root/proj``'s store, as the handlers answer them.

    Parameters
    ----------
    root : Path
        The server root, with the models of :func:`train_models` in ``proj/``'s store.

    Returns
    -------
    dict
        One body per name in :data:`BODIES`, as parsed strict JSON (temporary values are not
        replaced yet: see :func:`stable`).
    """
    from aimodel_kernel.engine.core.errors import NotFoundError
    from aimodel_kernel.server.catalog import diff_payload, list_models
    from aimodel_kernel.server.store_location import settings_for

    settings = settings_for(root, PROJECT)
    bodies: dict[str, Any] = {
        "models": list_models(settings),
        "diff": diff_payload(settings, "cancer-lr/1", "cancer-lr@champion"),
    }
    try:
        diff_payload(settings, "cancer-lr/1", MISSING_REF)
    except NotFoundError as exc:  # the handlers answer 404 with the message
        bodies["error"] = {"message": str(exc), "reason": responses[404]}
    else:
        raise AssertionError(f"{MISSING_REF} exists")
    return {name: json.loads(json.dumps(bodies[name], allow_nan=False)) for name in BODIES}


def stable(bodies: dict[str, dict[str, Any]], root: Path, trained: list[str]
           ) -> dict[str, dict[str, Any]]:
    """``bodies`` with what changes from one generation to the next replaced by placeholders.

    The temporary root and the run ids are replaced wherever they occur; the versions'
    creation times (which occur in the models body only) become :data:`CREATED_PLACEHOLDER`
    plus one minute per version, in the order ``trained`` lists them.
    """
    versions = {v["ref"]: v for m in bodies["models"]["models"] for v in m["versions"]}
    assert sorted(versions) == sorted(trained), (sorted(versions), trained)
    for i, ref in enumerate(trained, start=1):
        created = CREATED_PLACEHOLDER + timedelta(minutes=i)
        versions[ref]["created"] = created.isoformat(timespec="seconds")
    text = json.dumps(bodies)
    for i, ref in enumerate(trained, start=1):
        text = text.replace(versions[ref]["run_id"], f"{i:032x}")
    text = text.replace(json.dumps(str(root))[1:-1], ROOT_PLACEHOLDER)
    return json.loads(text)


def dump(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=1, allow_nan=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    start = time.perf_counter()
    with temporary_root() as root:
        trained = train_models(root)
        bodies = stable(build_examples(root), root, trained)
    out.mkdir(parents=True, exist_ok=True)
    for name, body in bodies.items():
        path = out / f"{name}.json"
        path.write_text(dump(body), encoding="utf-8")
        print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: "
              f"{path.stat().st_size:,} bytes")
    print(f"{len(bodies)} examples in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
