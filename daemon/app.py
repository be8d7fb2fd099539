"""Wiring: build the engine, session factory, unit directory and archive from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from daemon.archive import Archive
from daemon.clock import Clock, SystemClock
from daemon.config import Settings
from daemon.context import RegisterContext
from daemon.db import create_db_engine, make_session_factory
from daemon.errors import ConfigError
from daemon.scoring import load_scoring_rules
from daemon.units import UnitDirectory
from daemon.workdays import WorkCalendar, WorkingHours, WorkingPeriod


@dataclass
class App:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    context: RegisterContext

    @property
    def clock(self) -> Clock:
        return self.context.clock

    def close(self) -> None:
        self.engine.dispose()


def working_hours(settings: Settings) -> WorkingHours:
    """Return ``calendar.working_hours`` as periods; raise ConfigError when they overlap or run backwards."""
    periods = []
    for text in settings.calendar.working_hours:
        start, _, end = text.partition("-")
        periods.append(WorkingPeriod(time.fromisoformat(start), time.fromisoformat(end)))
    try:
        return WorkingHours(tuple(periods))
    except ValueError as exc:
        raise ConfigError(
            [f"配置项 calendar.working_hours 有误：各时段须先开始后结束、按先后排列且不重叠（{exc}）"]
        ) from exc


def build_app(settings: Settings, *, clock: Clock | None = None) -> App:
    """Open the database and load the units and scoring files named in ``settings``; raise ConfigError on a bad file."""
    units = UnitDirectory.load(settings.units.file)
    engine = create_db_engine(settings.database.url)
    scoring = load_scoring_rules(settings.scoring.file) if settings.scoring.file else None
    calendar = WorkCalendar.from_file(settings.calendar.file, hours=working_hours(settings), tz=settings.tz)
    context = RegisterContext(
        settings=settings,
        units=units,
        archive=Archive(settings.archive.dir),
        clock=clock or SystemClock(),
        scoring=scoring,
        calendar=calendar,
    )
    return App(settings=settings, engine=engine, session_factory=make_session_factory(engine), context=context)
