"""Wiring: build the engine, session factory, unit directory and archive from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from daemon.archive import Archive
from daemon.clock import Clock, SystemClock
from daemon.config import Settings
from daemon.db import create_db_engine, make_session_factory
from daemon.register import RegisterContext
from daemon.units import UnitDirectory


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


def build_app(settings: Settings, *, clock: Clock | None = None) -> App:
    """Open the database and load the units file named in ``settings``; raise ConfigError on a bad file."""
    units = UnitDirectory.load(settings.units.file)
    engine = create_db_engine(settings.database.url)
    context = RegisterContext(
        settings=settings, units=units, archive=Archive(settings.archive.dir), clock=clock or SystemClock()
    )
    return App(settings=settings, engine=engine, session_factory=make_session_factory(engine), context=context)
