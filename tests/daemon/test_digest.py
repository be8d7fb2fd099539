"""The office digest: its content, sending it once per slot, the working-day schedule and `zwxx digest`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from daemon.app import App, build_app
from daemon.cli import main
from daemon.clock import FrozenClock
from daemon.config import Settings, load_settings
from daemon.db import upgrade_database
from daemon.digest import send_digest
from daemon.embedded import SmtpSink
from daemon.jobs import DATABASE_STORE, DigestSender, digest_job_id, run_task, scheduled_jobs, start_scheduler
from daemon.models import Digest, Item, ItemState, Message, MessageState, OutboxMail
from daemon.notices import NO_REVIEW_LINE_WARNING, NO_SIGNER_WARNING
from daemon.outbound import send_due
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_register import CD, LZ, Mailbox, build_mail, item_docx

OFFICE = "xxb@tourism.example.gov.cn"
STRANGER = "chengdu_xc@qq.com"
SUBJECT_PREFIX = "【政务信息摘要】"
# Monday 2 November 2026, 09:00 in Asia/Shanghai.
MONDAY_0900 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
# MIME nesting deeper than the interpreter's recursion limit: the real parser rejects it, so the
# message is stored as quarantined.
NESTING = 2000
NESTED_MIME = (
    b"From: cd_wenlv@example.cn\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
    + b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(NESTING))
    + b"text\r\n"
    + b"".join(b"--b%d--\r\n" % i for i in reversed(range(NESTING)))
)


def open_app(settings: Settings, at: datetime) -> App:
    """An App on a migrated database whose clock is frozen at ``at``."""
    application = build_app(settings, clock=FrozenClock(at))
    upgrade_database(application.engine)
    application.context.archive.ensure()
    return application


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = open_app(settings, MONDAY_0900)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def mailbox(app: App) -> Mailbox:
    return Mailbox(app)


def clock_of(app: App) -> FrozenClock:
    clock = app.clock
    assert isinstance(clock, FrozenClock)
    return clock


def office_command(mailbox: Mailbox, text: str) -> Message:
    """Deliver a command mail from the office at the app's current time."""
    return mailbox.deliver(build_mail(OFFICE, "命令", [], text=text), mailbox.app.clock.now())


def register_items(mailbox: Mailbox) -> None:
    """Register 2026-0001 and 2026-0002 (成都, one mail) and 2026-0003 (泸州, no review line)."""
    now = mailbox.app.clock.now()
    mailbox.deliver(
        build_mail(
            CD,
            "【工作动态】信息两则",
            [
                ("消费季.docx", item_docx("成都启动冬季消费季", "10月27日举行启动仪式。")),
                ("培训班.docx", item_docx("成都举办导游培训班", "11月3日培训班开班。", review="审核：赵强超")),
            ],
        ),
        now,
    )
    mailbox.deliver(
        build_mail(
            LZ,
            "【工作动态】泸州发布酒城旅游线路",
            [("线路.docx", item_docx("泸州发布酒城旅游线路", "发布十条线路。", review=""))],
        ),
        now,
    )


def deliver_held_and_quarantined(mailbox: Mailbox) -> None:
    now = mailbox.app.clock.now()
    held = mailbox.deliver(
        build_mail(STRANGER, "成都市冬季旅游信息", [("x.docx", item_docx("成都冰雪季开幕", "12月1日开幕。"))]), now
    )
    assert held.state == MessageState.HELD
    quarantined = mailbox.deliver(NESTED_MIME, now)
    assert quarantined.state == MessageState.QUARANTINED


def digest_rows(app: App) -> list[OutboxMail]:
    with app.session_factory() as session:
        rows = list(session.scalars(select(OutboxMail).where(OutboxMail.purpose == "digest").order_by(OutboxMail.id)))
        session.expunge_all()
    return rows


def digests(app: App) -> list[Digest]:
    with app.session_factory() as session:
        rows = list(session.scalars(select(Digest).order_by(Digest.id)))
        session.expunge_all()
    return rows


def run_send_digest(app: App, slot: str) -> Digest:
    with app.session_factory.begin() as session:
        digest = send_digest(session, app.context, slot=slot)
        session.flush()
        session.expunge(digest)
    return digest


def parse(raw: bytes) -> EmailMessage:
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


def body_of(mail: EmailMessage) -> str:
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def section(text: str, heading: str) -> str:
    """Return the lines of ``text`` from the line starting with ``heading`` to the next blank line."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(heading))
    end = next((index for index in range(start + 1, len(lines)) if not lines[index].strip()), len(lines))
    return "\n".join(lines[start:end])


def attachment_names(mail: EmailMessage) -> list[str | None]:
    return [part.get_filename() for part in mail.iter_attachments()]


def item_state(app: App, serial: str) -> ItemState:
    with app.session_factory() as session:
        item = session.scalar(select(Item).where(Item.serial == serial))
        assert item is not None
        return ItemState(item.state)


def prepare_office_day(app: App, mailbox: Mailbox) -> None:
    """Register three items, a held and a quarantined mail, then send 0001 for approval and return 0002."""
    register_items(mailbox)
    deliver_held_and_quarantined(mailbox)
    office_command(mailbox, "送审 2026-0001\n退回 2026-0002 意见：请补充游客人次数据。")
    assert item_state(app, "2026-0001") == ItemState.PENDING_APPROVAL
    assert item_state(app, "2026-0002") == ItemState.RETURNED


def check_digest_text(text: str) -> None:
    new = section(text, "一、新登记的信息")
    assert "（3 条）" in new
    assert "1. 2026-0001　成都市文旅局　工作动态　" in new
    assert "2. 2026-0002　成都市文旅局　工作动态　" in new
    assert "3. 2026-0003　泸州市文旅局　工作动态　" in new
    assert "成都启动冬季消费季" in new
    assert "成都举办导游培训班" in new
    assert "泸州发布酒城旅游线路" in new
    assert f"提示：{NO_SIGNER_WARNING}" in new
    assert f"提示：{NO_REVIEW_LINE_WARNING}" in new
    assert "附件：2026-0001-消费季.docx" in new
    assert "附件：2026-0002-培训班.docx" in new
    assert "附件：2026-0003-线路.docx" in new

    pending = section(text, "二、待领导审批")
    assert "（1 条）" in pending
    # 送审 at 09:00 on Monday, the digest 26 hours later.
    assert "1. 2026-0001　成都市文旅局　成都启动冬季消费季　已送审 1 天 2 小时" in pending
    assert "2026-0002" not in pending

    returned = section(text, "三、已退回、尚未收到修改稿")
    assert "（1 条）" in returned
    assert "1. 2026-0002　成都市文旅局　成都举办导游培训班　退回于 2026年11月02日 09:00" in returned

    held = section(text, "四、待办公室处理的来信")
    assert "（2 封）" in held
    assert f"[待确认（未知发件人）] {STRANGER}　成都市冬季旅游信息" in held
    # A mail the parser rejects has no sender or subject recorded, so the digest shows placeholders.
    assert "2. [已隔离（无法处理）] cd_wenlv@example.cn　nested　2026年11月02日 09:00" in held
    assert "邮件的 MIME 结构嵌套过深，无法解析" in held


def test_digest_lists_every_section(app: App, mailbox: Mailbox, smtp_sink: SmtpSink) -> None:
    prepare_office_day(app, mailbox)
    clock_of(app).advance(timedelta(hours=26))  # Tuesday 11:00

    digest = run_send_digest(app, "2026-11-03 11:00")

    assert digest.sent is True
    (row,) = digest_rows(app)
    assert digest.outbox_id == row.id
    assert row.recipients.splitlines() == [OFFICE]
    queued = parse(row.raw)
    assert str(queued["To"]) == OFFICE
    assert queued["Cc"] is None
    assert queued["Bcc"] is None
    assert str(queued["Auto-Submitted"]) == "auto-generated"
    assert str(queued["Subject"]) == (
        "【政务信息摘要】2026-11-03 11:00：新信息 3 条，待审批 1 条，退回待改 1 条，待处理来信 2 封"
    )
    check_digest_text(body_of(queued))
    expected_names = ["2026-0001-消费季.docx", "2026-0002-培训班.docx", "2026-0003-线路.docx"]
    assert attachment_names(queued) == expected_names

    # The project's own sender delivers it to the SMTP sink, as the daemon's outbox job would.
    summary = send_due(app.session_factory, app.settings, app.clock, limit=1000)
    assert summary.failed == 0
    received = [mail for mail in smtp_sink.received if str(parse(mail.data)["Subject"]).startswith(SUBJECT_PREFIX)]
    assert len(received) == 1
    assert received[0].rcpt_tos == [OFFICE]
    delivered = parse(received[0].data)
    assert str(delivered["Auto-Submitted"]) == "auto-generated"
    check_digest_text(body_of(delivered))
    assert attachment_names(delivered) == expected_names
    first_document = next(delivered.iter_attachments()).get_content()
    assert isinstance(first_document, bytes)
    assert first_document.startswith(b"PK")  # a .docx is a zip file


def test_second_digest_lists_nothing_new(app: App, mailbox: Mailbox) -> None:
    prepare_office_day(app, mailbox)
    run_send_digest(app, "2026-11-02 16:00")
    clock_of(app).advance(timedelta(hours=24))

    second = run_send_digest(app, "2026-11-03 09:00")

    assert second.sent is True
    rows = digest_rows(app)
    assert len(rows) == 2
    mail = parse(rows[1].raw)
    assert str(mail["Subject"]).endswith("新信息 0 条，待审批 1 条，退回待改 1 条，待处理来信 2 封")
    text = body_of(mail)
    assert "自上次摘要（2026年11月02日 09:00）以来" in text
    new = section(text, "一、新登记的信息")
    assert "（0 条）" in new
    assert "（无）" in new
    assert "2026-0003" not in text
    assert "已送审 1 天 0 小时" in section(text, "二、待领导审批")
    assert "2026-0002" in section(text, "三、已退回、尚未收到修改稿")
    assert "（2 封）" in section(text, "四、待办公室处理的来信")
    assert attachment_names(mail) == []


def test_digest_after_everything_is_done(app: App, mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    prepare_office_day(app, mailbox)
    run_send_digest(app, "2026-11-02 09:00")
    clock = clock_of(app)

    # The office acts on everything: the request is withdrawn, the unit resends the returned item,
    # the stranger's address is registered and the quarantined mail is discarded.
    clock.advance(timedelta(hours=1))
    office_command(mailbox, "撤销 2026-0001")
    mailbox.deliver(
        build_mail(
            CD,
            "【修改稿】成都举办导游培训班",
            [("培训班修改稿.docx", item_docx("成都举办导游培训班", "11月3日培训班开班，培训导游200名。"))],
        ),
        clock.now(),
    )
    office_command(mailbox, f"登记 {STRANGER} 成都市")
    with app.session_factory() as session:
        quarantined = session.scalar(select(Message.id).where(Message.state == MessageState.QUARANTINED))
    code = main(["--config", str(app.settings.path), "quarantine", "discard", str(quarantined), "--reason", "无法解析"])
    assert code == 0
    capsys.readouterr()
    assert item_state(app, "2026-0001") == ItemState.REGISTERED
    assert item_state(app, "2026-0002") == ItemState.SUPERSEDED

    # The revision (0004) and the registered held mail (0005) are new once.
    clock.advance(timedelta(hours=6))
    afternoon = run_send_digest(app, "2026-11-02 16:00")
    assert afternoon.sent is True
    text = body_of(parse(digest_rows(app)[-1].raw))
    new = section(text, "一、新登记的信息")
    assert "（2 条）" in new
    assert "2026-0004" in new
    assert "2026-0005" in new
    assert "（0 条）" in section(text, "二、待领导审批")
    assert "（0 条）" in section(text, "三、已退回、尚未收到修改稿")
    assert "（0 封）" in section(text, "四、待办公室处理的来信")

    clock.advance(timedelta(hours=17))
    quiet = run_send_digest(app, "2026-11-03 09:00")

    assert quiet.sent is False
    assert quiet.outbox_id is None
    assert len(digest_rows(app)) == 2
    assert [row.slot for row in digests(app)] == ["2026-11-02 09:00", "2026-11-02 16:00", "2026-11-03 09:00"]


def test_same_slot_queues_one_mail(app: App, mailbox: Mailbox) -> None:
    register_items(mailbox)

    first = run_send_digest(app, "2026-11-02 09:00")
    clock_of(app).advance(timedelta(minutes=5))
    register_items(mailbox)  # new items after the first run still do not make the slot send again
    second = run_send_digest(app, "2026-11-02 09:00")

    assert first.sent is True
    assert second.id == first.id
    assert second.outbox_id == first.outbox_id
    assert len(digest_rows(app)) == 1
    assert len(digests(app)) == 1


@pytest.mark.parametrize(
    ("local_time", "expected_slot"),
    [
        (datetime(2026, 11, 7, 9, 0), None),  # Saturday
        (datetime(2026, 10, 1, 9, 0), None),  # National Day, a Thursday
        (datetime(2026, 10, 10, 9, 0), "2026-10-10 09:00"),  # Saturday worked in lieu (调休上班)
        (datetime(2026, 1, 4, 9, 0), "2026-01-04 09:00"),  # Sunday worked in lieu
        (datetime(2026, 11, 2, 9, 0), "2026-11-02 09:00"),  # Monday
    ],
)
def test_digest_sender_follows_working_days(
    settings: Settings, local_time: datetime, expected_slot: str | None
) -> None:
    application = open_app(settings, local_time.replace(tzinfo=settings.tz))
    try:
        assert application.context.calendar.is_working_day(local_time.date()) is (expected_slot is not None)
        register_items(Mailbox(application))

        DigestSender(application, "09:00")()

        rows = digests(application)
        if expected_slot is None:
            assert rows == []
            assert digest_rows(application) == []
        else:
            assert [row.slot for row in rows] == [expected_slot]
            assert rows[0].sent is True
            (mail,) = digest_rows(application)
            assert str(parse(mail.raw)["Subject"]).startswith(f"{SUBJECT_PREFIX}{expected_slot}：新信息 3 条")
    finally:
        application.close()


def test_digest_sender_warns_of_missing_calendar_year(app: App, mailbox: Mailbox) -> None:
    # From November on the digest warns when next year's holidays are not known yet.
    register_items(mailbox)
    if app.context.calendar.is_year_covered(2027):
        pytest.skip("the installed calendar already covers 2027")

    DigestSender(app, "09:00")()

    (row,) = digest_rows(app)
    assert "！！2027 年的法定节假日和调休上班安排尚未录入" in body_of(parse(row.raw))


def test_digest_on_holiday_when_not_limited(write_config: WriteConfig) -> None:
    settings = load_settings(write_config(extra="[digest]\nworking_days_only = false\n"))
    national_day = datetime(2026, 10, 1, 16, 0, tzinfo=settings.tz)
    application = open_app(settings, national_day)
    try:
        assert not application.context.calendar.is_working_day(national_day.date())
        register_items(Mailbox(application))

        DigestSender(application, "16:00")()

        assert [row.slot for row in digests(application)] == ["2026-10-01 16:00"]
        assert len(digest_rows(application)) == 1
    finally:
        application.close()


def test_scheduler_has_one_job_per_time(app: App) -> None:
    scheduler = start_scheduler(app)
    try:
        digest_jobs = sorted(
            (job for job in scheduler.get_jobs(jobstore=DATABASE_STORE) if job.id.startswith("digest.")),
            key=lambda j: j.id,
        )
    finally:
        scheduler.shutdown(wait=True)

    assert [job.id for job in digest_jobs] == ["digest.0900", "digest.1600"]
    assert [digest_job_id(at) for at in app.settings.digest.times] == ["digest.0900", "digest.1600"]
    for job, (hour, at) in zip(digest_jobs, [("9", "09:00"), ("16", "16:00")], strict=True):
        fields = {field.name: str(field) for field in job.trigger.fields}
        assert fields["hour"] == hour
        assert fields["minute"] == "0"
        assert fields["day_of_week"] == "*"
        assert str(job.trigger.timezone) == "Asia/Shanghai"
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time == 2 * 3600
        assert job.func is run_task
        assert tuple(job.args) == ("digest", at)


def test_scheduler_uses_configured_times(write_config: WriteConfig) -> None:
    settings = load_settings(write_config(extra='[digest]\ntimes = ["08:30", "17:45"]\n'))
    application = open_app(settings, MONDAY_0900)
    try:
        ids = {job.id: job for job in scheduled_jobs(application) if job.id.startswith("digest.")}
        assert set(ids) == {"digest.0830", "digest.1745"}
        fields = {field.name: str(field) for field in ids["digest.0830"].trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("8", "30")
    finally:
        application.close()


def test_large_document_is_listed_not_attached(write_config: WriteConfig) -> None:
    settings = load_settings(write_config(extra="[digest]\nmax_attachment_bytes = 100\n"))
    application = open_app(settings, MONDAY_0900)
    try:
        register_items(Mailbox(application))

        digest = run_send_digest(application, "2026-11-02 09:00")

        assert digest.sent is True
        (row,) = digest_rows(application)
        mail = parse(row.raw)
        assert attachment_names(mail) == []
        new = section(body_of(mail), "一、新登记的信息")
        assert new.count("说明：附件较大，未随摘要发送，可用 zwxx show 查看") == 3
        assert "附件：2026-0001-消费季.docx" in new
    finally:
        application.close()


def test_cli_digest_prints_counts(app: App, mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    prepare_office_day(app, mailbox)
    config = str(app.settings.path)

    code = main(["--config", config, "digest"])

    out = capsys.readouterr().out
    assert code == 0
    assert "自上次摘要以来：新信息 3 条；待审批 1 条；领导要求修改 0 条；退回待改 1 条；待处理来信 2 封。" in out
    assert digests(app) == []  # a preview records nothing

    code = main(["--config", config, "digest", "--send"])

    assert code == 0
    assert "摘要已放入发件箱，由守护进程发送。" in capsys.readouterr().out
    (row,) = digests(app)
    assert row.sent is True
    assert row.slot.startswith("手动 ")
    assert len(digest_rows(app)) == 1


def test_undecided_reply_is_listed_once(app: App, mailbox: Mailbox) -> None:
    # A leader's mail that replies to no approval request is reported in the next digest only.
    leader = app.settings.office.leaders[0]
    message = mailbox.deliver(build_mail(leader, "关于冬季消费季", [], text="同意"), app.clock.now())
    assert message.state == MessageState.UNDECIDED

    first = run_send_digest(app, "2026-11-02 09:00")
    clock_of(app).advance(timedelta(hours=7))
    second = run_send_digest(app, "2026-11-02 16:00")

    assert first.sent is True
    (row,) = digest_rows(app)
    held = section(body_of(parse(row.raw)), "四、待办公室处理的来信")
    assert f"1. [未采纳的审批回复] {leader}　关于冬季消费季" in held
    assert second.sent is False


def test_digest_lists_items_past_their_time_limit(settings: Settings) -> None:
    application = open_app(settings, MONDAY_0900)
    try:
        register_items(Mailbox(application))
        # 工作动态 received on Monday are due at the end of Tuesday's working hours; it is Wednesday now.
        application.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
        with application.session_factory.begin() as session:
            digest = send_digest(session, application.context, slot="2026-11-04 09:00")
        with application.session_factory() as session:
            text = body_of(parse(session.get_one(OutboxMail, digest.outbox_id).raw))
    finally:
        application.close()

    assert "超过报送时限、尚未报送两办（3 条）" in text
    assert "2026-0001　成都市文旅局　成都启动冬季消费季　时限 2026年11月03日 17:30　已登记" in text
