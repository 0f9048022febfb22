from src.exceptions import Conflict, Forbidden, NotFound, Unprocessable


class ReviewJobNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Review job not found.")


class NotYourJob(Forbidden):
    pass


class WrongStage(Conflict):
    pass


class InvalidCorrection(Unprocessable):
    pass
