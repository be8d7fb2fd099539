"""items.title_key: the indexed normalised title used to find the item a revision replaces

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from parsers.titles import TITLE_KEY_CHARS, title_key

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL_ROWS = 1000


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("title_key", sa.String(length=TITLE_KEY_CHARS), server_default="", nullable=False)
        )
    # Keys of the items registered before this revision, computed as the model computes them.
    items = sa.table("items", sa.column("id", sa.Integer), sa.column("title", sa.Text), sa.column("title_key"))
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(items.c.id, items.c.title).where(items.c.id > last_id).order_by(items.c.id).limit(_BACKFILL_ROWS)
        ).all()
        if not rows:
            break
        connection.execute(
            items.update().where(items.c.id == sa.bindparam("row_id")).values(title_key=sa.bindparam("key")),
            [{"row_id": row.id, "key": title_key(row.title)} for row in rows],
        )
        last_id = rows[-1].id
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_items_title_key"), ["title_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_title_key"))
        batch_op.drop_column("title_key")
