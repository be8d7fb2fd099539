"""November 2026 walked day by day on a frozen clock, the real IMAP server and the SMTP sink.

Four corpus units send items, the office sends them for approval, submits them (报送) and records
adoptions (采用), and commissions a piece (约稿) from three units. The scheduled tasks run at the
times the scheduler would run them. The test then checks every reminder, notice and bulletin the
SMTP sink received: each went out once, on the expected day, to the expected recipients. The
November bulletin's figures are compared with a table worked out by hand, in the mail text, the
.docx and the .xlsx.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import docx
import openpyxl
import pytest
from sqlalchemy import select

from daemon.app import App, build_app
from daemon.clock import FrozenClock
from daemon.config import Settings, load_settings
from daemon.db import upgrade_database
from daemon.embedded import ReceivedMail, SmtpSink
from daemon.jobs import TASKS, scheduled_jobs
from daemon.models import Commission, CommissionState, Item, OutboxMail, OutboxState
from daemon.outbound import send_due
from tests.daemon.conftest import WriteConfig
from tests.daemon.test_office_flow import reply_to
from tests.daemon.test_pipeline import poll_once
from tests.daemon.test_register import CD, DOCX_TYPE, GY, LZ, build_mail, item_docx
from tests.servers.handle import ImapServerHandle

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE = "xxb@tourism.example.gov.cn"
LEADER = "leader@tourism.example.gov.cn"
MAILBOX = "zwxx@tourism.example.gov.cn"
LS = "lsly@example.gov.cn"
REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Pro-rata on Friday 20 November (day 324 of 365) a target of 5 is due at 4.4, 2 at 1.8, 14 at 12.4,
# 10 at 8.9 and 1 at 0.9. On that day 成都 (2 submitted, 2 adopted, 13 points) and 广元 (10 points)
# are on track, while 泸州 (2 submitted, 1 adopted) and 乐山 (nothing adopted) are behind.
TARGETS_TOML = """\
[[targets]]
year = 2026
unit = "cd"
submitted = 2
adopted = 2
points = 14

[[targets]]
year = 2026
unit = "泸州市文旅局"
submitted = 5
adopted = 2

[[targets]]
year = 2026
unit = "gy"
points = 10

[[targets]]
year = 2026
unit = "ls"
adopted = 1
"""

# Deadline Friday 13 November, 17:30. Three working days before it is Tuesday 10 November and one
# working day before it Thursday 12 November.
COMMISSION_TEXT = "约稿：冬季旅游消费情况\n单位：成都市、泸州市、乐山市\n截止：11月13日\n要求：800字以内，附图片2张。"
COMMISSION_CODE = "约稿2026-001"

# The November bulletin worked out by hand from the events below. Points: 2026-0001 is adopted by
# 省委办公厅 with a 省领导's 批示 on 5 Nov (5 + 3) and by 四川信息 on 23 Nov (3), 2026-0005 by
# 省政府办公厅 (5), 2026-0002 by 四川信息 (3), 2026-0003 by 国务院办公厅 (10). 2026-0001 arrived on
# 30 October, so it counts in 成都's year to date only; 2026-0010 arrived and 2026-0006 was adopted
# on 1 December, so neither counts. Units without any activity tie at rank 4.
# unit: (rank, November: received, submitted, adopted, points, commissions on time, commissions missed,
#        year to date: received, submitted, adopted, points)
HAND_NOVEMBER: dict[str, tuple[int, tuple[int, int, int, int, int, int], tuple[int, int, int, int]]] = {
    "cd": (1, (3, 2, 2, 16, 1, 0), (4, 2, 2, 16)),
    "gy": (2, (2, 1, 1, 10, 0, 0), (2, 1, 1, 10)),
    "lz": (3, (2, 2, 1, 3, 1, 0), (2, 2, 1, 3)),
    "ls": (4, (1, 0, 0, 0, 0, 1), (1, 0, 0, 0)),
}
# The same rows as the .docx table and the mail text show them: rank, unit, November (4), year to
# date (4), yearly targets (3), completion of the targets (3), commissions on time and missed.
HAND_CELLS = {
    "cd": ["1", "成都市文旅局", "3", "2", "2", "16", "4", "2", "2", "16", "2", "2", "14"]
    + ["100.0%", "100.0%", "114.3%", "1", "0"],
    "gy": ["2", "广元市旅游局", "2", "1", "1", "10", "2", "1", "1", "10", "—", "—", "10"]
    + ["—", "—", "100.0%", "0", "0"],
    "lz": ["3", "泸州市文旅局", "2", "2", "1", "3", "2", "2", "1", "3", "5", "2", "—"]
    + ["40.0%", "50.0%", "—", "1", "0"],
    "ls": ["4", "乐山市文旅局", "1", "0", "0", "0", "1", "0", "0", "0", "—", "1", "—"] + ["—", "0.0%", "—", "0", "1"],
}
# Targets 7 submitted (cd 2 + lz 5), 5 adopted (cd 2 + lz 2 + ls 1), 24 points (cd 14 + gy 10):
# 4/7 = 57.1%, 3/5 = 60.0%, 26/24 = 108.3%.
HAND_TOTAL_CELLS = ["", "合计", "8", "5", "4", "29", "9", "5", "4", "29", "7", "5", "24"]
HAND_TOTAL_CELLS += ["57.1%", "60.0%", "108.3%", "2", "1"]


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time of 2026 in Asia/Shanghai."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


START = local(11, 1, 8)  # Sunday 1 November, 08:00
END = local(12, 2, 18)  # Wednesday 2 December, 18:00


@pytest.fixture
def settings(write_config: WriteConfig, tmp_path: Path) -> Settings:
    targets = tmp_path / "targets.toml"
    targets.write_text(TARGETS_TOML, encoding="utf-8")
    scoring = (REPO_ROOT / "examples" / "scoring.toml").as_posix()
    extra = f'[scoring]\nfile = "{scoring}"\n\n[targets]\nfile = "{targets.as_posix()}"\n'
    return load_settings(write_config(extra=extra))


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = build_app(settings, clock=FrozenClock(START.astimezone(UTC)))
    upgrade_database(application.engine)
    application.context.archive.ensure()
    try:
        yield application
    finally:
        application.close()


# -- mails -------------------------------------------------------------------------------------


def header(raw: bytes, name: str) -> str:
    return str(message_from_bytes(raw, policy=policy.default)[name] or "")


def plain_text(raw: bytes) -> str:
    body = message_from_bytes(raw, policy=policy.default).get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def unit_mail(sender: str, subject: str, title: str, body: str, *, sent: datetime, to: str = MAILBOX) -> bytes:
    """A unit's mail with one item as a .docx attachment."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(sent)
    mail["Message-ID"] = make_msgid(domain="example.gov.cn")
    mail.set_content("请审阅。")
    mail.add_attachment(item_docx(title, body), maintype=DOCX_TYPE[0], subtype=DOCX_TYPE[1], filename=f"{title}.docx")
    return mail.as_bytes(policy=policy.SMTP)


def kind_of(mail: ReceivedMail) -> str:
    """The bracketed prefix of a mail's subject, e.g. 【约稿提醒】."""
    subject = header(mail.data, "Subject")
    return subject[: subject.index("】") + 1] if subject.startswith("【") else subject


def sent_at(mail: ReceivedMail) -> str:
    """The simulated time a mail was built, from its Date header, as "MM-DD HH:MM" in Shanghai."""
    return parsedate_to_datetime(header(mail.data, "Date")).astimezone(SHANGHAI).strftime("%m-%d %H:%M")


def deliveries(sink: SmtpSink, kind: str) -> list[tuple[str, tuple[str, ...]]]:
    """(time, envelope recipients) of every mail of ``kind`` the sink received, sorted."""
    return sorted((sent_at(mail), tuple(sorted(mail.rcpt_tos))) for mail in sink.received if kind_of(mail) == kind)


# -- the simulation ------------------------------------------------------------------------------


class Month:
    """Moves the frozen clock, delivers mail to the IMAP server and runs the scheduled tasks."""

    def __init__(self, app: App, imap: ImapServerHandle, sink: SmtpSink) -> None:
        self.app = app
        self.imap = imap
        self.sink = sink

    def now(self) -> datetime:
        return self.app.clock.now()

    def move_to(self, moment: datetime) -> None:
        clock = self.app.clock
        assert isinstance(clock, FrozenClock)
        delta = moment.astimezone(UTC) - clock.now()
        assert delta >= timedelta(0), f"the clock cannot go back to {moment}"
        clock.advance(delta)

    def receive(self, raw: bytes, *, arrived: datetime | None = None) -> None:
        """Append ``raw`` with the given arrival time (default now), poll and send the outbox."""
        self.imap.append(raw, msg_time=arrived or self.now())
        stored, _sent = poll_once(self.app)
        assert stored == 1

    def run(self, task: str, *args: str) -> None:
        """Run a scheduled task as the scheduler does, then send what it queued."""
        TASKS[task](self.app, *args)
        send_due(self.app.session_factory, self.app.settings, self.app.clock, limit=1000)

    def approval_request(self, serial: str) -> ReceivedMail:
        requests = [
            mail
            for mail in self.sink.received
            if LEADER in mail.rcpt_tos and kind_of(mail) == "【请审批】" and serial in plain_text(mail.data)
        ]
        assert requests, f"no approval request for {serial}"
        return requests[-1]

    def commission_notice(self, address: str) -> ReceivedMail:
        (notice,) = [mail for mail in self.sink.received if address in mail.rcpt_tos and kind_of(mail) == "【约稿】"]
        return notice


Action = Callable[[Month], None]


def item(sender: str, title: str, body: str, *, subject: str = "") -> Action:
    """A unit's mail with one item; the subject defaults to 【工作动态】 and the title."""

    def act(month: Month) -> None:
        month.receive(unit_mail(sender, subject or f"【工作动态】{title}", title, body, sent=month.now()))

    return act


def command(text: str, *, subject: str = "命令") -> Action:
    def act(month: Month) -> None:
        month.receive(build_mail(OFFICE, subject, [], text=text, sent=month.now()))

    return act


def approve(serial: str) -> Action:
    def act(month: Month) -> None:
        month.receive(reply_to(month.approval_request(serial), "同意。"))

    return act


def answer_by_token(sender: str, title: str, body: str) -> Action:
    """The unit answers through the notice's token (Reply-To and subject), without threading headers."""

    def act(month: Month) -> None:
        notice = month.commission_notice(sender).data
        subject = "回复：" + header(notice, "Subject")
        month.receive(unit_mail(sender, subject, title, body, sent=month.now(), to=header(notice, "Reply-To")))

    return act


def run_bulletins(month: Month) -> None:
    month.run("bulletins")


def late_mail_of_october(month: Month) -> None:
    """A mail that reached the mailbox on Friday 30 October, before the simulation begins."""
    arrived = local(10, 30, 16)
    raw = unit_mail(CD, "【工作动态】成都启动冬季消费季", "成都启动冬季消费季", "10月27日举行启动仪式。", sent=arrived)
    month.receive(raw, arrived=arrived)


# The serial each mail's item gets is in the comment after it.
EVENTS: list[tuple[datetime, Action]] = [
    (local(11, 1, 8, 10), late_mail_of_october),  # 2026-0001 cd
    (local(11, 2, 10, 10), item(LZ, "泸州举办酒城文化旅游节", "文化旅游节11月1日开幕。")),  # 2026-0002 lz
    (local(11, 2, 10, 30), command("送审 2026-0001 2026-0002")),
    (local(11, 2, 11, 10), approve("2026-0001")),
    (local(11, 2, 15, 10), command("报送 2026-0001 2026-0002")),
    (local(11, 3, 9, 30), command(COMMISSION_TEXT, subject="约稿")),
    (local(11, 3, 10, 10), item(GY, "广元发布冰雪旅游线路", "发布十条冰雪旅游线路。")),  # 2026-0003 gy
    (local(11, 4, 14, 30), item(CD, "成都举办导游培训班", "11月3日培训班开班。")),  # 2026-0004 cd
    (local(11, 5, 10, 10), answer_by_token(CD, "成都冬季旅游消费持续升温", "冰雪游订单同比增长三成。")),  # 2026-0005 cd
    (local(11, 5, 15, 10), command("采用 2026-0001 省委办公厅 《四川信息》第45期 批示 省领导")),
    (local(11, 6, 10, 10), command("采用 2026-0002 四川信息")),
    (local(11, 9, 10, 10), command("送审 2026-0003")),
    (local(11, 9, 10, 20), approve("2026-0003")),
    (local(11, 9, 11, 10), command("送审 2026-0005")),
    (local(11, 9, 11, 20), approve("2026-0005")),
    (local(11, 9, 14, 30), command("报送 2026-0003")),
    (local(11, 10, 9, 30), command("报送 2026-0005")),
    # 泸州 answers the day after its first reminder, naming the commission's code in a new mail.
    (
        local(11, 11, 10, 10),
        item(LZ, "泸州冬季旅游市场回暖", "温泉酒店入住率超过八成。", subject=f"【约稿信息】{COMMISSION_CODE} 冬季旅游"),
    ),  # 2026-0006 lz
    # 乐山 sends an item, but not the commissioned one.
    (local(11, 12, 10, 10), item(LS, "乐山大佛景区推出冬季优惠", "门票半价至明年2月。")),  # 2026-0007 ls
    (local(11, 16, 10, 10), command("采用 2026-0005 省政府办公厅")),
    (local(11, 17, 10, 10), command("采用 2026-0003 国务院办公厅")),
    (local(11, 18, 10, 10), command("送审 2026-0006")),
    (local(11, 18, 10, 20), approve("2026-0006")),
    (local(11, 18, 15, 10), command("报送 2026-0006")),
    (local(11, 23, 10, 10), command("采用 2026-0001 四川信息")),
    (local(11, 25, 10, 10), item(GY, "广元举办红色旅游推介会", "推介十条红色旅游线路。")),  # 2026-0008 gy
    (local(11, 30, 16, 30), item(CD, "成都发布温泉旅游地图", "地图收录温泉点位36个。")),  # 2026-0009 cd
    # After November: neither counts in the November bulletin.
    (local(12, 1, 8, 10), item(LS, "乐山举办冬季马拉松", "赛事吸引选手一万人。")),  # 2026-0010 ls
    (local(12, 1, 8, 20), command("采用 2026-0006 四川信息")),
    # The bulletin task runs again later the same day and the next day: the bulletin goes out once.
    (local(12, 1, 15, 5), run_bulletins),
    (local(12, 2, 10, 5), run_bulletins),
]


def scheduler_runs(app: App, start: datetime, end: datetime) -> list[tuple[datetime, str, tuple[str, ...]]]:
    """Return (time, task, arguments) of every run the daemon's schedule fires from ``start`` to ``end``.

    The times come from the triggers of daemon.jobs.scheduled_jobs, so the test follows the
    configured schedule: digests, bulletins, target reminders at 40 minutes past 8-17 o'clock,
    commission reminders every 20 minutes and holiday reminders at 08:00.
    """
    runs = []
    for job in scheduled_jobs(app):
        fire = job.trigger.get_next_fire_time(None, start)
        while fire is not None and fire <= end:
            runs.append((fire, job.task, job.args))
            fire = job.trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return runs


@dataclass(frozen=True)
class Step:
    """One moment of the simulation: a mail or command that happens then, or a scheduled run."""

    at: datetime
    action: Action | None = None
    task: str = ""
    args: tuple[str, ...] = ()


def simulate(month: Month) -> None:
    """Walk from START to END, doing the events and the scheduled runs in time order.

    At the same moment an event comes before a scheduled run, and scheduled runs keep the order
    of scheduled_jobs (digests, bulletins, target, commission and holiday reminders).
    """
    steps = [Step(at, action=action) for at, action in EVENTS]
    steps += [Step(at, task=task, args=args) for at, task, args in scheduler_runs(month.app, START, END)]
    steps.sort(key=lambda step: step.at)
    for step in steps:
        month.move_to(step.at)
        if step.action is not None:
            step.action(month)
        else:
            month.run(step.task, *step.args)


# -- the checks ------------------------------------------------------------------------------------


def attachment(mail: ReceivedMail, suffix: str) -> bytes:
    parsed = message_from_bytes(mail.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    (part,) = [p for p in parsed.iter_attachments() if (p.get_filename() or "").endswith(suffix)]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


def xlsx_rows(data: bytes) -> dict[str, dict[str, object]]:
    """Unit code (合计 for the totals) → column header → value, from the bulletin's workbook."""
    sheet = openpyxl.load_workbook(io.BytesIO(data))["通报"]
    rows = list(sheet.iter_rows(values_only=True))
    columns = rows[1]
    table = {}
    for row in rows[2:]:
        values = dict(zip(columns, row, strict=False))
        if values.get("单位代码"):
            table[str(values["单位代码"])] = values
        elif values.get("单位") == "合计":
            table["合计"] = values
    return table


def text_cells(text: str, unit: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if unit in line.split())


def test_simulated_november(app: App, imap: ImapServerHandle, smtp_sink: SmtpSink) -> None:
    month = Month(app, imap, smtp_sink)
    simulate(month)

    # Every mail queued was sent once: one outbox row per mail, no Message-ID twice.
    with app.session_factory() as session:
        outbox = list(session.scalars(select(OutboxMail)))
    assert {row.state for row in outbox} == {OutboxState.SENT}
    received = smtp_sink.received
    assert len(received) == len(outbox)
    message_ids = [header(mail.data, "Message-ID") for mail in received]
    assert len(set(message_ids)) == len(message_ids)

    # Each mail became the item the events list names, and the commands moved it as written.
    with app.session_factory() as session:
        items = {row.serial: (row.unit_code, str(row.state)) for row in session.scalars(select(Item))}
        categories = {
            row.serial: row.category for row in session.scalars(select(Item).where(Item.commission_id.is_not(None)))
        }
    assert items == {
        "2026-0001": ("cd", "adopted"),
        "2026-0002": ("lz", "adopted"),
        "2026-0003": ("gy", "adopted"),
        "2026-0004": ("cd", "registered"),
        "2026-0005": ("cd", "adopted"),
        "2026-0006": ("lz", "adopted"),
        "2026-0007": ("ls", "registered"),
        "2026-0008": ("gy", "registered"),
        "2026-0009": ("cd", "registered"),
        "2026-0010": ("ls", "registered"),
    }
    assert categories == {"2026-0005": "约稿信息", "2026-0006": "约稿信息"}

    # Commission notices go out on 3 November. Reminders 3 and 1 working days before the deadline
    # go only to units that have not answered yet. The deadline is Friday 17:30, so the first run
    # within working hours after it, on Monday, sends the overdue notices to 乐山 and the office.
    assert deliveries(smtp_sink, "【约稿】") == [("11-03 09:30", (CD,)), ("11-03 09:30", (LS,)), ("11-03 09:30", (LZ,))]
    assert deliveries(smtp_sink, "【约稿提醒】") == [
        ("11-10 08:40", (LS,)),
        ("11-10 08:40", (LZ,)),
        ("11-12 08:40", (LS,)),
    ]
    assert deliveries(smtp_sink, "【约稿逾期】") == [("11-16 08:40", (LS,)), ("11-16 08:40", (OFFICE,))]
    reminders = {(sent_at(m)[:5], m.rcpt_tos[0]): m.data for m in received if kind_of(m) == "【约稿提醒】"}
    assert "距截止还有 3 个工作日" in plain_text(reminders[("11-10", LZ)])
    assert "距截止还有 1 个工作日" in plain_text(reminders[("11-12", LS)])
    assert "〔回复码 yg1-ls-" in header(reminders[("11-12", LS)], "Subject")
    (ls_overdue,) = [m for m in received if LS in m.rcpt_tos and kind_of(m) == "【约稿逾期】"]
    assert "已于 2026年11月13日 17:30（北京时间）截止" in plain_text(ls_overdue.data)
    (office_overdue,) = [m for m in received if OFFICE in m.rcpt_tos and kind_of(m) == "【约稿逾期】"]
    assert header(office_overdue.data, "Subject") == f"【约稿逾期】{COMMISSION_CODE} 冬季旅游消费情况：1 个单位未报送"
    assert "乐山" in plain_text(office_overdue.data)
    with app.session_factory() as session:
        commission = session.scalar(select(Commission))
        assert commission is not None
        assert commission.state == CommissionState.CLOSED
        answers = {}
        for row in commission.units:
            answer = session.get(Item, row.answered_item_id) if row.answered_item_id else None
            answers[row.unit_code] = answer.serial if answer else None
    assert answers == {"cd": "2026-0005", "lz": "2026-0006", "ls": None}

    # Target reminders on 20 November at the first run within working hours, to the units behind.
    assert deliveries(smtp_sink, "【进度提醒】") == [("11-20 08:40", (LS,)), ("11-20 08:40", (LZ,))]
    lz_text = plain_text(next(m for m in received if kind_of(m) == "【进度提醒】" and LZ in m.rcpt_tos).data)
    assert "报送两办：已完成 2 条，全年目标 5 条，按时间进度应达 4.4 条" in lz_text
    assert "被采用：已完成 1 条，全年目标 2 条，按时间进度应达 1.8 条" in lz_text
    ls_text = plain_text(next(m for m in received if kind_of(m) == "【进度提醒】" and LS in m.rcpt_tos).data)
    assert "被采用：已完成 0 条，全年目标 1 条，按时间进度应达 0.9 条" in ls_text

    # No statutory holiday ends in November, so no 假日综述 reminders.
    assert deliveries(smtp_sink, "【提醒】") == []

    # October's bulletin on Monday 2 November, November's on Tuesday 1 December, each at 09:00 and once,
    # to the office (To) and, hidden, the leader and the first address of every unit.
    everyone = tuple(sorted({OFFICE, LEADER, *(u.addresses[0] for u in app.context.units.units.values())}))
    assert deliveries(smtp_sink, "【通报】") == [("11-02 09:00", everyone), ("12-01 09:00", everyone)]
    bulletins = {header(m.data, "Subject"): m for m in received if kind_of(m) == "【通报】"}
    assert all(header(m.data, "To") == OFFICE and not header(m.data, "Bcc") for m in bulletins.values())
    assert sorted(bulletins) == ["【通报】2026年10月政务信息工作通报", "【通报】2026年11月政务信息工作通报"]
    october = xlsx_rows(attachment(bulletins["【通报】2026年10月政务信息工作通报"], ".xlsx"))
    assert october["cd"]["本月收到"] == 1
    assert october["合计"]["本月收到"] == 1
    assert october["合计"]["本月报送"] == 0

    # Digests go to the office only, at most once per slot, at 09:00 or 16:00 on working days.
    digests = [m for m in received if kind_of(m) == "【政务信息摘要】"]
    assert digests
    assert all(m.rcpt_tos == [OFFICE] for m in digests)
    assert len({header(m.data, "Subject").split("：")[0] for m in digests}) == len(digests)
    digest_times = [parsedate_to_datetime(header(m.data, "Date")).astimezone(SHANGHAI) for m in digests]
    assert {moment.strftime("%H:%M") for moment in digest_times} == {"09:00", "16:00"}
    assert all(app.context.calendar.is_working_day(moment.date()) for moment in digest_times)

    # The rest of the traffic, counted by kind: receipts for the ten unit mails, one reply per
    # command mail, four approval requests and their results.
    counts = Counter(kind_of(mail) for mail in received)
    counts.pop("【政务信息摘要】")
    assert counts == {
        "【回执】": 10,
        "【命令执行结果】": 14,
        "【约稿已发出】": 1,
        "【请审批】": 4,
        "【审批结果】": 4,
        "【约稿】": 3,
        "【约稿提醒】": 3,
        "【约稿逾期】": 2,
        "【进度提醒】": 2,
        "【通报】": 2,
    }
    receipts = Counter(m.rcpt_tos[0] for m in received if kind_of(m) == "【回执】")
    assert receipts == {CD: 4, LZ: 2, GY: 2, LS: 2}
    replies = [plain_text(m.data) for m in received if kind_of(m) == "【命令执行结果】"]
    assert [text for text in replies if "×" in text] == []

    # The November bulletin: the figures in the .xlsx, the .docx table and the mail text.
    november = bulletins["【通报】2026年11月政务信息工作通报"]
    table = xlsx_rows(attachment(november, ".xlsx"))
    assert len(table) == len(app.context.units) + 1
    in_month = ["本月收到", "本月报送", "本月采用", "本月计分", "本月约稿按时", "本月约稿逾期"]
    to_date = ["年初至今收到", "年初至今报送", "年初至今采用", "年初至今计分"]
    for code, (rank, period, year_to_date) in HAND_NOVEMBER.items():
        row = table[code]
        assert (row["排名"], [row[name] for name in in_month], [row[name] for name in to_date]) == (
            rank, list(period), list(year_to_date),
        ), code  # fmt: skip
    others = [row for code, row in table.items() if code not in HAND_NOVEMBER and code != "合计"]
    assert {row["排名"] for row in others} == {4}
    assert {row[name] for row in others for name in in_month + to_date} == {0}
    assert table["cd"]["目标完成率计分"] == pytest.approx(1.1429)
    assert [table["合计"][name] for name in in_month] == [8, 5, 4, 29, 2, 1]
    assert [table["合计"][name] for name in to_date] == [9, 5, 4, 29]

    document = docx.Document(io.BytesIO(attachment(november, ".docx")))
    assert document.paragraphs[0].text == "2026年11月政务信息工作通报"
    assert len(document.inline_shapes) == 1
    docx_rows = {row.cells[1].text: [cell.text for cell in row.cells] for row in document.tables[0].rows}
    for cells in HAND_CELLS.values():
        assert docx_rows[cells[1]] == cells
    assert docx_rows["合计"] == HAND_TOTAL_CELLS

    text = plain_text(november.data)
    for cells in HAND_CELLS.values():
        assert text_cells(text, cells[1]) == cells

    parsed = message_from_bytes(november.data, policy=policy.default)
    (chart,) = [part for part in parsed.walk() if part.get_content_type() == "image/png"]
    png = chart.get_payload(decode=True)
    assert isinstance(png, bytes)
    assert png.startswith(PNG_SIGNATURE)
    html = next(part for part in parsed.walk() if part.get_content_type() == "text/html").get_content()
    assert f'src="cid:{chart["Content-ID"].strip("<>")}"' in html
