"""Every table of every domain, imported in one place for Alembic and the tests."""

from src.annotation.models import Keyframe, LabelClass  # noqa: F401
from src.auth.models import User  # noqa: F401
from src.database import Base  # noqa: F401
from src.datasets.models import Dataset  # noqa: F401
from src.videos.models import Video  # noqa: F401
