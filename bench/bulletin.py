"""Bulletin benchmark: compute_bulletin over a register of N items (default 1,000,000), best of 5.

Loads items spread over several years across the corpus units, with adoptions, revoked adoptions,
superseded items, copies and commissions. SQLite gets a temporary file; PostgreSQL gets a
throwaway database zwxx_bench_<pid> on 127.0.0.1:5432, dropped afterwards. Prints the timings and
the query plans of the bulletin's queries.

Run from the repository root:  python -m bench.bulletin --items 1000000 --database sqlite postgresql
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

from bench.common import write_config
from daemon.app import App, build_app
from daemon.bulletins import compute_bulletin
from daemon.clock import FrozenClock
from daemon.config import load_settings
from daemon.db import upgrade_database
from daemon.logsetup import setup_logging

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Tuesday 1 December 2026, 09:30 in Asia/Shanghai: when the November bulletin is due.
NOW = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
LAST_YEAR = 2026
ITEM_COLUMNS = (
    "id", "serial", "year", "seq", "message_db_id", "unit_code", "title", "category", "source", "body_text",
    "body_chars", "has_review_line", "received_at", "state", "photo_count", "version", "submitted_at",
    "same_item_as_id",
)  # fmt: skip
ADOPTION_COLUMNS = (
    "id", "item_id", "event_id", "adopted_on", "outlet", "publication", "issue", "instructed",
    "instruction_level", "outlet_level", "points", "rules_name", "explanation", "actor", "revoked_at",
)  # fmt: skip
CHUNK = 50_000


def generate(count: int, units: list[str], years: int, seed: int = 1) -> Iterator[tuple[tuple, list[tuple]]]:
    """Yield (item row, adoption rows) for ``count`` items received over the last ``years`` years.

    About 3% are superseded, 2% are copies of the item before them, 60% are submitted a day after
    receipt and a quarter of those are adopted (one adoption in 20 is revoked, one in 10 has a
    second outlet). Times are naive UTC, as the UTCDateTime columns store them.
    """
    rng = random.Random(seed)
    start = datetime(LAST_YEAR - years + 1, 1, 1)
    span = (datetime(LAST_YEAR, 12, 1) - start).total_seconds()
    adoption_id = 0
    for item_id in range(1, count + 1):
        received = start + timedelta(seconds=rng.random() * span)
        roll = rng.random()
        state, submitted, same_as = "registered", None, None
        if roll < 0.03:
            state = "superseded"
        elif roll < 0.05 and item_id > 1:
            same_as = item_id - 1
        elif roll < 0.65:
            state, submitted = "submitted", received + timedelta(days=1)
        adoptions = []
        if submitted is not None and rng.random() < 0.25:
            state = "adopted"
            for outlet in range(2 if rng.random() < 0.1 else 1):
                adoption_id += 1
                revoked = NOW if rng.random() < 0.05 else None
                adopted_on = (submitted + timedelta(days=5 + 10 * outlet)).date()
                points = rng.choice((2, 3, 5))
                adoptions.append(
                    (adoption_id, item_id, 1, adopted_on, "省委办公厅", "", "", False, "", "省委", points, "bench", "",
                     "bench@example.gov.cn", revoked)
                )  # fmt: skip
        item = (
            item_id, f"B{item_id:09d}", received.year, item_id, 1, units[item_id % len(units)], "信息标题", "工作动态",
            "body", "正文", 2, True, received, state, 0, 1, submitted, same_as,
        )  # fmt: skip
        yield item, adoptions


def insert_fixed_rows(connection: Connection, units: list[str], years: int) -> None:
    """Insert the one message and event the items point at, and a year's worth of commissions per year."""
    connection.execute(
        text(
            "INSERT INTO messages (id, account, folder, uidvalidity, uid, sha256, content_sha256, size, fetched_at,"
            " state, attempts, server_action) VALUES (1, 'bench', 'INBOX', 1, 1, :h, :h, 1, :t, 'registered', 0,"
            " 'done')"
        ),
        {"h": "0" * 64, "t": NOW.replace(tzinfo=None)},
    )
    connection.execute(
        text(
            "INSERT INTO items (id, serial, year, seq, message_db_id, unit_code, title, category, source, body_text,"
            " body_chars, has_review_line, received_at, state, photo_count, version)"
            " VALUES (0, 'B000000000', 2000, 0, 1, 'cd', 'x', 'x', 'body', 'x', 1, true, :t, 'registered', 0, 1)"
        ),
        {"t": datetime(2000, 1, 1)},  # outside every bulletin measured
    )
    connection.execute(
        text("INSERT INTO item_events (id, item_id, at, actor, new_state) VALUES (1, 0, :t, 'bench', 'adopted')"),
        {"t": NOW.replace(tzinfo=None)},
    )
    rng = random.Random(2)
    seq = 0
    for year in range(LAST_YEAR - years + 1, LAST_YEAR + 1):
        for month in range(1, 13):
            for _ in range(4):
                seq += 1
                deadline = datetime(year, month, rng.randint(1, 28), 9, 30)
                connection.execute(
                    text(
                        "INSERT INTO commissions (id, code, year, seq, topic, requirements, deadline_at, state,"
                        " created_at, created_by) VALUES (:id, :code, :year, :seq, '专题', '', :d, 'closed', :d,"
                        " 'bench')"
                    ),
                    {"id": seq, "code": f"B{seq:06d}", "year": year, "seq": seq, "d": deadline},
                )
                for unit in rng.sample(units, 5):
                    answered = deadline - timedelta(days=1) if rng.random() < 0.8 else None
                    connection.execute(
                        text(
                            "INSERT INTO commission_units (commission_id, unit_code, answered_at) VALUES (:c, :u, :a)"
                        ),
                        {"c": seq, "u": unit, "a": answered},
                    )


def load_sqlite(engine: Engine, count: int, units: list[str], years: int) -> None:
    """Insert through the raw sqlite3 connection with executemany, in SQLAlchemy's text formats.

    The engine's connections run in autocommit mode (daemon.db), so each chunk gets its own BEGIN.
    """

    def stamp(value: datetime | None) -> str | None:
        return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")

    with engine.begin() as connection:
        insert_fixed_rows(connection, units, years)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        items_sql = f"INSERT INTO items ({', '.join(ITEM_COLUMNS)}) VALUES ({', '.join('?' * len(ITEM_COLUMNS))})"
        adoptions_sql = (
            f"INSERT INTO adoptions ({', '.join(ADOPTION_COLUMNS)}) VALUES ({', '.join('?' * len(ADOPTION_COLUMNS))})"
        )
        items: list[tuple] = []
        adoptions: list[tuple] = []
        for item, item_adoptions in generate(count, units, years):
            items.append((*item[:12], stamp(item[12]), item[13], item[14], item[15], stamp(item[16]), item[17]))
            adoptions += [(*a[:3], a[3].isoformat(), *a[4:14], stamp(a[14])) for a in item_adoptions]
            if len(items) >= CHUNK:
                insert_chunk(cursor, items_sql, items, adoptions_sql, adoptions)
                items, adoptions = [], []
        insert_chunk(cursor, items_sql, items, adoptions_sql, adoptions)
        cursor.execute("ANALYZE")
    finally:
        raw.close()


def insert_chunk(cursor: Any, items_sql: str, items: list[tuple], adoptions_sql: str, adoptions: list[tuple]) -> None:
    cursor.execute("BEGIN")
    cursor.executemany(items_sql, items)
    cursor.executemany(adoptions_sql, adoptions)
    cursor.execute("COMMIT")


def load_postgres(engine: Engine, count: int, units: list[str], years: int) -> None:
    """Insert with COPY through psycopg, then ANALYZE as autovacuum would soon after a bulk load."""
    with engine.begin() as connection:
        insert_fixed_rows(connection, units, years)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        adoptions: list[tuple] = []
        with cursor.copy(f"COPY items ({', '.join(ITEM_COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for item, item_adoptions in generate(count, units, years):
                copy.write_row(item)
                adoptions += item_adoptions
        with cursor.copy(f"COPY adoptions ({', '.join(ADOPTION_COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for adoption in adoptions:
                copy.write_row(adoption)
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def capture_plans(app: App, kind: str, period: str) -> list[str]:
    """Run compute_bulletin once, recording its statements, and return each statement's query plan."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, *rest: Any) -> None:
        statements.append((statement, parameters))

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        with app.session_factory() as session:
            compute_bulletin(session, app.context, kind, period, targets=None)
    finally:
        event.remove(app.engine, "before_cursor_execute", record)

    prefix = "EXPLAIN QUERY PLAN " if app.engine.dialect.name == "sqlite" else "EXPLAIN "
    plans = []
    with app.engine.connect() as connection:
        for statement, parameters in statements:
            rows = connection.exec_driver_sql(prefix + statement, parameters).all()
            plans.append("\n".join(" ".join(str(v) for v in row) for row in rows))
    return plans


def time_bulletin(app: App, kind: str, period: str, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        with app.session_factory() as session:
            started = time.perf_counter()
            compute_bulletin(session, app.context, kind, period, targets=None)
            timings.append(time.perf_counter() - started)
    return timings


def run(database: str, count: int, years: int, repeats: int, workdir: Path, *, show_plans: bool) -> None:
    pg_name = None
    if database == "postgresql":
        import psycopg

        pg_name = f"zwxx_bench_{os.getpid()}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}"')
            admin.execute(f'CREATE DATABASE "{pg_name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_name}"
    else:
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    config = write_config(
        workdir / "config.toml", port=9, user="bench", password="bench", database_url=url, archive=workdir / "archive"
    )
    app = build_app(load_settings(config), clock=FrozenClock(NOW))
    try:
        upgrade_database(app.engine)
        units = list(app.context.units.units)
        started = time.perf_counter()
        (load_sqlite if database == "sqlite" else load_postgres)(app.engine, count, units, years)
        print(f"{database}: loaded {count:,} items over {years} year(s) in {time.perf_counter() - started:.1f} s")
        # VACUUM sets PostgreSQL's visibility map, without which index-only scans visit the table;
        # autovacuum does the same on a live database soon after a bulk load.
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE" if database == "postgresql" else "ANALYZE")
        with app.engine.connect() as connection:
            adoptions = connection.execute(text("SELECT count(*) FROM adoptions")).scalar_one()
            in_year = connection.execute(
                text("SELECT count(*) FROM items WHERE received_at >= :a"), {"a": datetime(LAST_YEAR, 1, 1)}
            ).scalar_one()
        print(f"{database}: {adoptions:,} adoptions; {in_year:,} items received in {LAST_YEAR}")
        for kind, period in (("monthly", f"{LAST_YEAR}-11"), ("yearly", str(LAST_YEAR))):
            timings = time_bulletin(app, kind, period, repeats)
            print(
                f"{database}: {kind} {period}: best {min(timings):.3f} s, all {', '.join(f'{t:.3f}' for t in timings)}"
            )
        if show_plans:
            for plan in capture_plans(app, "monthly", f"{LAST_YEAR}-11"):
                print(f"--- {database} plan\n{plan}")
    finally:
        app.close()
        if pg_name is not None:
            import psycopg

            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="number of items to load")
    parser.add_argument("--years", type=int, default=5, help="years the items are spread over, ending in 2026")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per bulletin; the best is reported")
    parser.add_argument("--database", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--plans", action="store_true", help="print the query plans of the monthly bulletin")
    args = parser.parse_args()
    setup_logging("WARNING")
    for database in args.database:
        with tempfile.TemporaryDirectory(prefix="zwxx-bench-") as workdir:
            run(
                database,
                args.items,
                args.years,
                args.repeats,
                Path(workdir),
                show_plans=args.plans,
            )


if __name__ == "__main__":
    main()
