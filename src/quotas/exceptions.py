from src.exceptions import DomainError


class QuotaExceeded(DomainError):
    """A quota refused the action. `quota` names it (e.g. "max_storage_bytes"); the message
    says how much is used and how to get more. 413 for sizes, 422 for counts."""

    def __init__(self, message: str, *, quota: str, status_code: int = 422):
        super().__init__(message)
        self.quota = quota
        self.status_code = status_code
