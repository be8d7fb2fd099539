"""What every stage that registers or answers mail needs: settings, units, archive and clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.archive import Archive
from daemon.clock import Clock
from daemon.config import Settings
from daemon.scoring import ScoringRules
from daemon.units import UnitDirectory
from daemon.workdays import WorkCalendar


@dataclass(frozen=True)
class RegisterContext:
    settings: Settings
    units: UnitDirectory
    archive: Archive
    clock: Clock
    scoring: ScoringRules | None = None  # adoption points; None when no rules file is configured
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
