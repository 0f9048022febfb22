"""Errors of dataset drafts, label classes and keyframes (messages are shown as they are)."""

from __future__ import annotations

from src.exceptions import Conflict, NotFound, Unprocessable


class DatasetNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Dataset not found")


class LabelClassNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Class not found in this dataset")


class KeyframeNotFound(NotFound):
    def __init__(self, frame: int) -> None:
        super().__init__(f"Frame {frame} is not a keyframe of this dataset")


class NotADraft(Conflict):
    def __init__(self, state: str) -> None:
        super().__init__(f"Only drafts can be edited; this dataset is {state}.")


class VideoNotReady(Conflict):
    def __init__(self) -> None:
        super().__init__("The video is not ready yet; wait until it has been processed.")


class DuplicateClass(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"There is already a class named '{name}' in this dataset.")


class ClassInUse(Conflict):
    def __init__(self, name: str, boxes: int) -> None:
        noun = "box uses" if boxes == 1 else "boxes use"
        super().__init__(
            f"{boxes} {noun} the class '{name}'. Confirm to remove the class and its boxes (force=true)."
        )


class InvalidDraft(Unprocessable):
    """A class name, colour, dataset name or keyframe that cannot be accepted."""


class NotReadyToCreate(Unprocessable):
    """The draft cannot become a dataset yet (no boxes)."""


class AttributeNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Attribute not found in this dataset")


class DuplicateAttribute(Conflict):
    def __init__(self, class_name: str, name: str) -> None:
        super().__init__(f"The class '{class_name}' already has an attribute named '{name}'.")
