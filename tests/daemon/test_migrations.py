"""Schema migrations: they build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from daemon.db import create_db_engine, current_revision, head_revision, upgrade_database
from daemon.models import Base


def test_migrations_match_models(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        upgrade_database(engine)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    assert differences == []


def test_upgrade_keeps_rows_of_first_schema(database_url: str) -> None:
    from alembic import command

    from daemon.db import _alembic_config

    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            config = _alembic_config(engine)
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO messages (account, folder, uidvalidity, uid, sha256, content_sha256, size, "
                    "fetched_at, state, server_action) VALUES ('default', 'INBOX', 7, 1, :h, :h, 10, "
                    "'2026-11-02 01:00:00', 'registered', 'done')"
                ),
                {"h": "0" * 64},
            )
        upgrade_database(engine)
        with engine.connect() as connection:
            row = connection.execute(text("SELECT uid, attempts, received_header_at FROM messages")).one()
    finally:
        engine.dispose()
    assert tuple(row) == (1, 0, None)


def test_title_key_backfilled(database_url: str) -> None:
    from alembic import command

    from daemon.db import _alembic_config

    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            config = _alembic_config(engine)
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO messages (id, account, folder, uidvalidity, uid, sha256, content_sha256, size, "
                    "fetched_at, state, server_action) VALUES (1, 'default', 'INBOX', 7, 1, :h, :h, 10, "
                    "'2026-11-02 01:00:00', 'registered', 'done')"
                ),
                {"h": "0" * 64},
            )
            for seq, title in ((1, "【修改稿】成都市 冬季文旅消费季启动"), (2, "Ｗｉｎｔｅｒ　“冰雪”季")):
                connection.execute(
                    text(
                        "INSERT INTO items (id, serial, year, seq, message_db_id, unit_code, title, category, source, "
                        "body_text, body_chars, has_review_line, received_at, state) VALUES (:seq, :serial, 2026, "
                        ":seq, 1, 'cd', :title, '工作动态', 'body', '正文', 2, true, '2026-11-02 01:00:00', "
                        "'registered')"
                    ),
                    {"seq": seq, "serial": f"2026-{seq:04d}", "title": title},
                )
        upgrade_database(engine)
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT title_key FROM items ORDER BY id")).scalars().all()
    finally:
        engine.dispose()
    assert keys == ["成都市冬季文旅消费季启动", "winter冰雪季"]
