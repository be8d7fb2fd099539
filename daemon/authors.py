"""Author unit of an item: the original sender's unit for a forward, else the sender's, else a unit named in it.

Shared by registration (``Item.content_unit_code``) and ``zwxx inspect`` (the report's ``content_unit``).
"""

from __future__ import annotations

from collections.abc import Iterable

from daemon.units import Unit, UnitDirectory


def find_named_unit(units: UnitDirectory, texts: Iterable[str]) -> Unit | None:
    """Return the unit whose name or alias occurs first in ``texts`` (joined), the longest name on a tie."""
    text = "\n".join(texts)
    best: tuple[int, int, str] | None = None
    for unit in units.units.values():
        for name in (unit.name, *unit.aliases):
            position = text.find(name)
            if position >= 0:
                candidate = (position, -len(name), unit.code)
                best = candidate if best is None or candidate < best else best
    return units.get(best[2]) if best else None


def find_content_unit(
    units: UnitDirectory,
    *,
    sender_unit: Unit | None,
    original_from: str | None,
    texts: Iterable[str],
) -> Unit | None:
    """Return the unit that wrote an item.

    For a forward (``original_from`` set) it is the original sender's unit. When that address is not
    in the directory, it is the first unit named in ``texts``, and only then the forwarding unit.
    For other mail it is the sender's unit, else the first unit named in ``texts``.
    """
    if original_from:
        original = units.lookup(original_from)
        if original is not None:
            return original
        return find_named_unit(units, texts) or sender_unit
    if sender_unit is not None:
        return sender_unit
    return find_named_unit(units, texts)
