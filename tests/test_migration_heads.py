"""The migrations form one line: several helpers adding a migration on the same day once left
two heads, and `alembic upgrade head` refuses to run with two."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from src.config import ROOT


def test_one_head():
    heads = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}; chain the newest after the others"
