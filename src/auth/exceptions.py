from src.exceptions import DomainError


class AuthError(DomainError):
    """A login problem with a message that can be shown to the user as it is."""


class BadCredentials(AuthError):
    def __init__(self) -> None:
        super().__init__("Wrong e-mail or password.")


class InactiveUser(AuthError):
    def __init__(self) -> None:
        super().__init__("This account is deactivated. Ask an administrator to reactivate it.")


class LoginRateLimited(AuthError):
    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__(
            f"Too many failed logins. Try again in {retry_after} seconds, or reset your password."
        )
        self.retry_after = retry_after
