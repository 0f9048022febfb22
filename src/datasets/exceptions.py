from src.exceptions import Conflict, NotFound, Unprocessable


class DatasetNotReady(Conflict):
    pass


class DownloadNotFound(NotFound):
    pass


class PriceChanged(Conflict):
    pass


class InvalidOptions(Unprocessable):
    pass
