"""Score ``inspect_message`` on the 60-message corpus against its expected values, field by field.

Usage: python tests/score_corpus.py [--verbose]
The corpus is read from $ZWXX_SHARED/corpus (default: ../shared next to the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from daemon.inspection import inspect_document, inspect_message
from daemon.logsetup import setup_logging
from daemon.units import UnitDirectory

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZWXX_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
CASES = SHARED / "cases"
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")

SCORED_FIELDS = (
    "message_id",
    "sender",
    "sender_name",
    "date",
    "unit",
    "content_unit",
    "subject",
    "is_item",
    "is_auto_reply",
    "is_bounce",
    "attachments",
    "title",
    "category",
    "item_source",
    "has_review_line",
    "review_line_location",
    "reviewer",
    "signer",
    "has_contact_line",
    "contact_line_location",
    "body_head30",
    "body_chars",
    "body_text",
)


def load_expected() -> list[dict[str, Any]]:
    """Return the expected record of every corpus message."""
    data = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    return list(data["messages"])


def load_units() -> UnitDirectory:
    """Return the corpus unit directory."""
    return UnitDirectory.load(CORPUS / "units.toml")


def inspect_corpus_file(name: str, units: UnitDirectory) -> dict[str, Any]:
    """Return the inspection report of one corpus file."""
    raw = (CORPUS / "eml" / name).read_bytes()
    return inspect_message(raw, units=units, default_tz=DEFAULT_TZ)


def compare_field(field: str, actual: Any, expected: Any) -> bool:
    """Tell whether an inspected value matches the expected one; ``date`` is compared as an instant."""
    if field == "date" and isinstance(actual, str) and isinstance(expected, str):
        return datetime.fromisoformat(actual) == datetime.fromisoformat(expected)
    return bool(actual == expected)


def check_case(report: dict[str, Any], checks: dict[str, dict[str, Any]]) -> list[str]:
    """Apply the fault-case checks (equals, includes, contains, lacks, count, instant, nonempty) to a report.

    Return one line per failed check; ``exit`` checks are skipped because they concern the CLI.
    """
    failures: list[str] = []
    for field, rules in checks.items():
        if field == "exit":
            continue
        value = report.get(field)
        for rule, wanted in rules.items():
            if not _check_rule(rule, value, wanted):
                failures.append(f"{field} {rule} {wanted!r}: 实际 {value!r}"[:300])
    return failures


def _check_rule(rule: str, value: Any, wanted: Any) -> bool:
    if rule == "equals":
        return bool(value == wanted)
    if rule == "includes":
        return isinstance(value, list) and all(entry in value for entry in wanted)
    if rule == "contains":
        return isinstance(value, str) and all(entry in value for entry in wanted)
    if rule == "lacks":
        return isinstance(value, str) and not any(entry in value for entry in wanted)
    if rule == "count":
        return isinstance(value, str) and all(value.count(text) == n for text, n in wanted.items())
    if rule == "instant":
        return isinstance(value, str) and datetime.fromisoformat(value) == datetime.fromisoformat(wanted)
    if rule == "nonempty":
        return bool(value) == bool(wanted)
    raise ValueError(f"unknown check rule: {rule}")


def inspect_case_file(name: str, units: UnitDirectory) -> dict[str, Any]:
    """Return the inspection report of one fault case: a mail, or a document under docx/."""
    data = (CASES / name).read_bytes()
    if name.startswith("docx/"):
        return inspect_document(data)
    return inspect_message(data, units=units, default_tz=DEFAULT_TZ)


def score_cases(units: UnitDirectory) -> tuple[int, int, list[str]]:
    """Return (cases passed, cases checked, failure lines) over the fault cases."""
    expected = json.loads((CASES / "expected.json").read_text(encoding="utf-8"))
    passed = 0
    lines: list[str] = []
    for name, checks in expected.items():
        failures = check_case(inspect_case_file(name, units), checks)
        if failures:
            lines.extend(f"{name} {failure}" for failure in failures)
        else:
            passed += 1
    return passed, len(expected), lines


def main(argv: list[str] | None = None) -> int:
    """Print the per-field scores and every mismatch; exit 0 always (it is a measurement)."""
    parser = argparse.ArgumentParser(description="按字段统计样本邮件的解析准确率")
    parser.add_argument("--verbose", action="store_true", help="显示不一致字段的完整取值")
    args = parser.parse_args(argv)
    setup_logging("ERROR")

    units = load_units()
    expected_records = load_expected()
    scores = dict.fromkeys(SCORED_FIELDS, 0)
    mismatches: list[str] = []
    for record in expected_records:
        report = inspect_corpus_file(record["file"], units)
        for field in SCORED_FIELDS:
            if compare_field(field, report.get(field), record.get(field)):
                scores[field] += 1
                continue
            actual, wanted = repr(report.get(field)), repr(record.get(field))
            if not args.verbose:
                actual, wanted = actual[:120], wanted[:120]
            mismatches.append(f"{record['file']} {field}:\n    实际 {actual}\n    期望 {wanted}")

    total = len(expected_records)
    for line in mismatches:
        print(line)
    print()
    for field in SCORED_FIELDS:
        print(f"{field:<22} {scores[field]:>2}/{total}")

    passed, checked, case_failures = score_cases(units)
    print()
    for line in case_failures:
        print(line)
    print(f"故障用例通过 {passed}/{checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
