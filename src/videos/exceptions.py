from src.exceptions import Conflict, NotFound, PayloadTooLarge, Unprocessable


class VideoNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Video not found.")


class InvalidVideo(Unprocessable):
    """The file is not a video the platform can use (message says why)."""


class UploadTooLarge(PayloadTooLarge):
    pass


class BadUpload(Unprocessable):
    pass


class ImportRefused(Unprocessable):
    pass


class VideoInUse(Conflict):
    pass
