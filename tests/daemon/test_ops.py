"""The daily operations digest to the administrators."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

from sqlalchemy import select

from daemon.app import App, build_app
from daemon.clock import FrozenClock
from daemon.config import load_settings
from daemon.db import upgrade_database
from daemon.models import OutboxMail
from daemon.ops import send_ops_digest
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_register import Mailbox, build_mail, item_docx

ADMIN = "admin@tourism.example.gov.cn"
LEADER = "leader@tourism.example.gov.cn"
MORNING = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # Monday 7 December 2026, 08:00 in Asia/Shanghai


def open_app(write_config: WriteConfig, extra: str) -> App:
    application = build_app(load_settings(write_config(extra=extra)), clock=FrozenClock(MORNING))
    upgrade_database(application.engine)
    application.context.archive.ensure()
    return application


def ops_mails(app: App) -> list[str]:
    with app.session_factory() as session:
        rows = list(session.scalars(select(OutboxMail).where(OutboxMail.purpose == "ops_digest")))
    texts = []
    for row in rows:
        mail = message_from_bytes(row.raw, policy=policy.default)
        body = mail.get_body(preferencelist=("plain",))
        assert body is not None
        assert row.recipient_list == [ADMIN]
        texts.append(f"{mail['Subject']}\n{body.get_content()}")
    return texts


def test_ops_digest_lists_what_needs_a_look(write_config: WriteConfig) -> None:
    app = open_app(write_config, f'[ops]\nadmins = ["{ADMIN}"]\n')
    try:
        mailbox = Mailbox(app)
        mailbox.deliver(
            build_mail("stranger@qq.example.com", "信息", [("a.docx", item_docx("标题", "正文。"))]), MORNING
        )
        mailbox.deliver(build_mail(LEADER, "同意", [], text="同意"), MORNING)  # a leader's mail without a token
        with app.session_factory.begin() as session:
            assert send_ops_digest(session, app) is True
        with app.session_factory.begin() as session:
            assert send_ops_digest(session, app) is False  # one per day
        (text,) = ops_mails(app)
    finally:
        app.close()

    assert "【运行情况】12月7日：3 项需要留意" in text  # calendar, held mail, the leader's mail
    assert "√ 数据库：已连接" in text
    assert "! 待办：" in text
    assert "未知发件人来信 1 封" in text
    assert "! 工作日历：2027 年" in text  # next year's holidays are not entered yet
    assert f"1. {LEADER}" in text
    assert "领导来信没有审批码" in text


def test_no_ops_digest_without_admins(write_config: WriteConfig) -> None:
    app = open_app(write_config, "")
    try:
        with app.session_factory.begin() as session:
            assert send_ops_digest(session, app) is False
        assert ops_mails(app) == []
    finally:
        app.close()
