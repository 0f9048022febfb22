"""Detector errors, each with a message a user can act on."""

from __future__ import annotations

from src.exceptions import Conflict, DomainError, NotFound, Unprocessable


class DetectorNotFound(NotFound):
    def __init__(self, message: str = "Model not found."):
        super().__init__(message)


class InvalidModel(Unprocessable):
    """The uploaded file is not a usable detector (raised in the worker too: picklable)."""

    def __reduce__(self):
        return (self.__class__, (self.message,))


class ModelNotReady(Conflict):
    def __init__(self, message: str = "This model is not ready (still validating or training, or invalid)."):
        super().__init__(message)


class InvalidTraining(DomainError):
    status_code = 422


class WorkerUnavailable(DomainError):
    """No worker answered an interactive request in time."""

    status_code = 503


class OfflineDownload(RuntimeError):
    """Ultralytics tried to fetch a file; Data Forge trains and predicts offline."""
