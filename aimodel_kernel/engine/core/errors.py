"""The exceptions the engine raises for problems with the user's input.

Magics translate exactly these into one-line ``UsageError`` messages; any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations


class AimodelError(Exception):
    """Base class of every error that is the user's to fix (bad input, missing package, ...)."""


class InputError(AimodelError, ValueError):
    """The data, model or options given to the engine cannot be used as they are."""


class NotFittedError(InputError):
    """A model was used for prediction before it was trained."""


class NotFoundError(InputError):
    """A registered model, version or run does not exist in the store."""


class ChecksumError(AimodelError):
    """A stored model file no longer matches the SHA-256 recorded when it was written."""


class MissingDependency(AimodelError, ImportError):
    """An optional package needed for this operation is not installed."""

    def __init__(self, package: str, extra: str | None = None, purpose: str = "") -> None:
        hint = f"pip install 'aimodel-kernel[{extra}]'" if extra else f"pip install {package}"
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{what} but is not installed; run: {hint}")
        self.package = package


def require(module: str, *, extra: str | None = None, purpose: str = "", package: str = ""):
    """Import an optional module, or raise :class:`MissingDependency` naming how to install it.

    Parameters
    ----------
    module : str
        Importable module name, such as ``"torch"``.
    extra : str, optional
        The aimodel-kernel extra that installs it.
    purpose : str, optional
        What it is needed for, shown in the message.
    package : str, optional
        Distribution name when it differs from the module name.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(package or module, extra, purpose) from exc
