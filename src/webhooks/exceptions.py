from src.exceptions import Conflict, NotFound, Unprocessable


class WebhookNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("There is no such webhook.")


class WebhookRefused(Unprocessable):
    """A URL the server will not send to (SSRF guard), with the reason."""


class TooManyWebhooks(Conflict):
    pass
