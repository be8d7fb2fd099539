"""Every corpus message run through inspect_message and compared with the expected values."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tests.score_corpus import SCORED_FIELDS, inspect_corpus_file, load_expected, load_units

EXPECTED = {record["file"]: record for record in load_expected()}

# Fields this stage cannot get right yet, per file: {file: {field: reason}}.
# Each entry becomes a strict xfail, so a fix shows up as an unexpected pass.
KNOWN_GAPS: dict[str, dict[str, str]] = {}


@functools.cache
def _units() -> Any:
    return load_units()


@functools.cache
def _report(name: str) -> dict[str, Any]:
    return inspect_corpus_file(name, _units())


def _cases() -> list[Any]:
    cases = []
    for name in EXPECTED:
        gaps = KNOWN_GAPS.get(name, {})
        for field in SCORED_FIELDS:
            marks = [pytest.mark.xfail(strict=True, reason=gaps[field])] if field in gaps else []
            cases.append(pytest.param(name, field, marks=marks, id=f"{name[:2]}-{field}"))
    return cases


def test_corpus_has_sixty_messages() -> None:
    assert len(EXPECTED) == 60


@pytest.mark.parametrize(("name", "field"), _cases())
def test_corpus_field(name: str, field: str) -> None:
    assert _report(name).get(field) == EXPECTED[name][field]


@pytest.mark.parametrize("name", list(EXPECTED), ids=lambda name: name[:2])
def test_corpus_sent_at_and_warnings(name: str) -> None:
    report = _report(name)
    assert report["sent_at"] is not None
    assert report["warnings"] == []
    assert "\ufffd" not in report["subject"]
    assert "\ufffd" not in report["mail_text"]
    assert "\ufffd" not in (report["body_text"] or "")
