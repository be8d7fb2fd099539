"""`zwxx export`: one tar.gz with the year's register, records and raw mail, checked by its own SHA256SUMS."""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from daemon.app import App
from daemon.export import export_year
from daemon.models import Message
from tests.daemon.test_cli import run_zwxx
from tests.daemon.test_register import CD, Mailbox, build_mail, item_docx

RECEIVED = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def test_export_holds_register_and_raw_mail(app: App, tmp_path: Path) -> None:
    raw = build_mail(CD, "【工作动态】成都启动冬季消费季", [("a.docx", item_docx("成都启动冬季消费季", "启动。"))])
    Mailbox(app).deliver(raw, RECEIVED)

    summary = export_year(app, RECEIVED.year, tmp_path)

    assert (summary.items, summary.messages, summary.missing) == (1, 1, 0)
    with tarfile.open(summary.path) as tar:
        files = {member.name.split("/", 1)[1]: tar.extractfile(member).read() for member in tar.getmembers()}  # type: ignore[union-attr]
    register = list(csv.reader(io.StringIO(files["登记簿.csv"].decode("utf-8-sig"))))
    assert register[0][:5] == ["编号", "收到时间", "报送单位", "标题", "类别"]
    assert register[1][:5] == [
        "2026-0001",
        "2026-11-02 09:00:00",
        "成都市文化广电旅游局",
        "成都启动冬季消费季",
        "工作动态",
    ]
    mails = [name for name in files if name.startswith("mail/")]
    assert len(mails) == 1
    assert files[mails[0]] == raw
    for line in files["SHA256SUMS"].decode().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(files[name]).hexdigest() == digest
    events = list(csv.reader(io.StringIO(files["办理记录.csv"].decode("utf-8-sig"))))
    assert events[1][0] == "2026-0001"
    assert events[1][2:6] == ["系统", "登记", "", "已登记"]


def test_export_of_an_empty_year(app: App, tmp_path: Path) -> None:
    summary = export_year(app, 2025, tmp_path)

    assert (summary.items, summary.messages) == (0, 0)
    assert summary.path.name == "zwxx-2025.tar.gz"


def test_export_lists_missing_raw_mail(app: App, tmp_path: Path) -> None:
    present = build_mail(CD, "【工作动态】成都启动冬季消费季", [("a.docx", item_docx("成都启动冬季消费季", "启动。"))])
    lost = build_mail(CD, "【工作动态】成都举办导游培训", [("b.docx", item_docx("成都举办导游培训", "培训。"))])
    mailbox = Mailbox(app)
    mailbox.deliver(present, RECEIVED)
    mailbox.deliver(lost, RECEIVED)
    with app.session_factory() as session:
        digest = session.scalars(select(Message.sha256).order_by(Message.id)).all()[1]
    app.context.archive.path_for(digest).unlink()
    out = tmp_path / "out"
    out.mkdir()

    result = run_zwxx("export", "2026", "--out", str(out), config=app.settings.path)

    assert result.returncode == 1
    assert "原始邮件 1 封" in result.stdout
    assert "另有 1 封邮件的原始文件不在归档目录中" in result.stdout
    assert "ERROR" not in result.stderr
    with tarfile.open(out / "zwxx-2026.tar.gz") as tar:
        names = [member.name.split("/", 1)[1] for member in tar.getmembers()]
        missing = tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("MISSING.txt")))
        assert missing is not None
        listed = missing.read().decode()
    assert sum(1 for name in names if name.startswith("mail/")) == 1
    assert digest in listed
