"""Every table of every domain, imported in one place for Alembic and the tests."""

from src.auth.models import User  # noqa: F401
from src.database import Base  # noqa: F401
