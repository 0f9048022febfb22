"""Attribute schemas per label class (AVA-style actions and CVAT attributes on tracks).

Revision ID: 0009_attributes
Revises: 0008_token_version
Create Date: 2026-12-01 22:55:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009_attributes'
down_revision: str | None = '0008_token_version'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('attribute_spec',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Uuid(), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('default', sa.JSON(), nullable=True),
    sa.Column('mutable', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], name=op.f('fk_attribute_spec_dataset_id_dataset'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['class_id'], ['label_class.id'], name=op.f('fk_attribute_spec_class_id_label_class'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attribute_spec')),
    sa.UniqueConstraint('class_id', 'name', name='uq_attribute_spec_class_id_name')
    )
    op.create_index(op.f('ix_attribute_spec_dataset_id'), 'attribute_spec', ['dataset_id'], unique=False)
    op.create_index(op.f('ix_attribute_spec_class_id'), 'attribute_spec', ['class_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_attribute_spec_class_id'), table_name='attribute_spec')
    op.drop_index(op.f('ix_attribute_spec_dataset_id'), table_name='attribute_spec')
    op.drop_table('attribute_spec')
