"""Domain errors: each carries a message a user can read and the HTTP status it maps to.

Services raise these; the app turns them into `{"detail": message}` for the API and a
friendly page for the browser. Domains subclass them (`VideoNotFound(NotFound)`).
"""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    status_code = 409


class Unprocessable(DomainError):
    status_code = 422


class PayloadTooLarge(DomainError):
    status_code = 413


class PaymentRequired(DomainError):
    status_code = 402
