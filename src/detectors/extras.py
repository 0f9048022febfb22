"""Whether this installation has the ML extras (torch + ultralytics, requirements/ml.txt).

Without them every detector feature (upload, training, evaluation, suggestions) would only
fail later in the worker with `ModuleNotFoundError: No module named 'torch'`; the pages say
so up front instead and the services refuse with `MlExtrasMissing`. Checked with
`importlib.util.find_spec`, which finds a package without importing it (the web process
never loads torch). The web process and the worker are installed together (`make up`, the
Docker image), so what the web process finds is what the worker has.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec

from src.exceptions import DomainError

PACKAGES = ("torch", "ultralytics")
INSTALL_HINT = ("Detector models need the ML extras (torch and ultralytics), which this server does not have: "
                "restart it with `make up WITH_ML=1` (installs requirements/ml.txt, about 5 GB).")


class MlExtrasMissing(DomainError):
    status_code = 503

    def __init__(self, message: str = INSTALL_HINT):
        super().__init__(message)


@cache
def missing() -> tuple[str, ...]:
    """The ML packages that are not installed (empty when detector features work)."""
    return tuple(name for name in PACKAGES if find_spec(name) is None)


def available() -> bool:
    return not missing()


def require() -> None:
    """Raise `MlExtrasMissing` unless torch and ultralytics are installed."""
    if missing():
        raise MlExtrasMissing()
