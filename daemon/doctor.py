"""`zwxx doctor`: check everything the daemon needs before it runs, and report what to fix.

Each check is independent: a failing one does not hide the others. Network checks log in and out
again and change nothing on the servers.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from daemon.app import App
from daemon.db import current_revision, head_revision
from daemon.errors import DaemonError
from daemon.intake import close_imap, connect_imap
from daemon.lease import PostgresLease, make_lease
from daemon.models import Message, MessageState, OutboxMail, OutboxState
from daemon.outbound import connect_smtp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # passed, with something the office should know


def missing_sqlite_file(app: App) -> Path | None:
    """Return the SQLite database file when it does not exist yet; connecting would create it empty."""
    url = make_url(app.settings.database.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return None if path.exists() else path


def check_database(app: App) -> CheckResult:
    missing = missing_sqlite_file(app)
    if missing is not None:
        return CheckResult("数据库", ok=False, detail=f"数据库文件 {missing} 不存在：请运行 zwxx init 建立数据库")
    try:
        current = current_revision(app.engine)
    except SQLAlchemyError as exc:
        return CheckResult("数据库", ok=False, detail=f"无法连接：{exc.__class__.__name__}: {exc}".splitlines()[0])
    head = head_revision()
    if current is None:
        return CheckResult("数据库", ok=False, detail="已连接，但尚未初始化（没有数据表）：请运行 zwxx init")
    if current != head:
        return CheckResult("数据库", ok=False, detail=f"版本为 {current}，最新为 {head}：请运行 zwxx init 升级")
    return CheckResult("数据库", ok=True, detail=f"已连接，版本 {current}（最新）")


def check_archive(app: App) -> CheckResult:
    folder = Path(app.settings.archive.dir)
    if not folder.exists():
        ancestor = next(parent for parent in folder.parents if parent.exists())
        if not os.access(ancestor, os.W_OK | os.X_OK):
            return CheckResult(
                "归档目录", ok=False, detail=f"{folder} 不存在，且无法在 {ancestor} 下建立：没有写入权限"
            )
        return CheckResult("归档目录", ok=True, warning=True, detail=f"{folder} 尚不存在，zwxx init 会建立它")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-", delete=True) as probe:
            probe.write(b"zwxx")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return CheckResult("归档目录", ok=False, detail=f"{folder} 无法写入：{exc.strerror or exc}")
    return CheckResult("归档目录", ok=True, detail=f"{folder} 可写")


def check_imap(app: App) -> CheckResult:
    imap = app.settings.imap
    try:
        client = connect_imap(app.settings)
    except DaemonError as exc:
        return CheckResult("IMAP", ok=False, detail=str(exc))
    try:
        info = client.select_folder(imap.folder, readonly=True)
        count = int(info.get(b"EXISTS", 0))
    except Exception as exc:  # noqa: BLE001 - any server answer here is reported, not raised
        return CheckResult(
            "IMAP",
            ok=False,
            detail=f"已登录，但无法打开文件夹“{imap.folder}”（服务器答复：{exc}）：请检查配置项 imap.folder",
        )
    finally:
        close_imap(client)
    return CheckResult(
        "IMAP", ok=True, detail=f"{imap.username}@{imap.host}:{imap.port} 登录成功，{imap.folder} 有 {count} 封邮件"
    )


def check_smtp(app: App) -> CheckResult:
    smtp = app.settings.smtp
    try:
        client = connect_smtp(app.settings)
    except DaemonError as exc:
        return CheckResult("SMTP", ok=False, detail=str(exc))
    try:
        client.quit()
    except OSError:
        client.close()
    login = "登录成功" if smtp.username else "连接成功（未配置登录）"
    return CheckResult("SMTP", ok=True, detail=f"{smtp.host}:{smtp.port} {login}")


def check_lease(app: App) -> CheckResult:
    """Tell whether a daemon holds the lease (daemon.lease), and which one as far as the lock shows."""
    if missing_sqlite_file(app) is not None:
        return CheckResult("轮询租约", ok=True, detail="空闲：数据库尚未建立，不会有 zwxx run 在运行")
    lease = make_lease(app.engine, app.settings.database.url)
    try:
        if lease.try_acquire():
            return CheckResult(
                "轮询租约", ok=True, detail="空闲：没有正在运行的 zwxx run；启动后由它收取邮件、发送邮件和执行定时任务"
            )
    finally:
        lease.release()
    if isinstance(lease, PostgresLease) and lease.unreachable:
        return CheckResult("轮询租约", ok=False, detail="无法读取：连不上数据库，见上面的数据库检查")
    holder = lease.holder()
    if holder is None:
        holder_text = "另一个 zwxx 进程"
    elif isinstance(lease, PostgresLease):
        where = f"来自 {holder.client}" if holder.client else "来自数据库服务器本机"
        holder_text = f"数据库会话 {holder.pid}（{where}"
        holder_text += f"，{holder.since.astimezone(app.settings.tz):%Y-%m-%d %H:%M} 起）" if holder.since else "）"
    else:
        holder_text = f"本机进程 {holder.pid}"
        holder_text += f"（{holder.since.astimezone(app.settings.tz):%Y-%m-%d %H:%M} 起）" if holder.since else ""
    return CheckResult(
        "轮询租约",
        ok=True,
        detail=f"由{holder_text}持有，它正在收取和发送邮件；再启动的 zwxx run 会待命，"
        f"每 {app.settings.general.standby_interval} 秒尝试接手",
    )


def check_calendar(app: App) -> CheckResult:
    ctx = app.context
    today = ctx.clock.now().astimezone(app.settings.tz).date()
    warning = ctx.calendar.next_year_warning(today)
    if warning:
        return CheckResult("工作日历", ok=True, warning=True, detail=warning)
    covered = "、".join(str(year) for year in (today.year, today.year + 1) if ctx.calendar.is_year_covered(year))
    return CheckResult("工作日历", ok=True, detail=f"已录入 {covered} 年的节假日和调休安排")


def check_backlog(app: App) -> CheckResult:
    if missing_sqlite_file(app) is not None:
        return CheckResult("待办", ok=False, detail="无法读取：数据库尚未建立，见上面的数据库检查")
    try:
        with app.session_factory() as session:
            failed = session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.state == OutboxState.FAILED))
            pending = session.scalar(select(func.count(OutboxMail.id)).where(OutboxMail.state == OutboxState.PENDING))
            quarantined = session.scalar(
                select(func.count(Message.id)).where(Message.state == MessageState.QUARANTINED)
            )
            held = session.scalar(select(func.count(Message.id)).where(Message.state == MessageState.HELD))
    except SQLAlchemyError:
        return CheckResult("待办", ok=False, detail="无法读取数据库，见上面的数据库检查")
    detail = f"待发邮件 {pending} 封，发送失败 {failed} 封，已隔离 {quarantined} 封，未知发件人来信 {held} 封"
    return CheckResult("待办", ok=True, warning=bool(failed or quarantined or held), detail=detail)


def mark_of(result: CheckResult) -> str:
    """Return the mark printed before a check's line: √ passed, ! passed with a warning, × failed."""
    if not result.ok:
        return "×"
    return "!" if result.warning else "√"


CHECKS: tuple[Callable[[App], CheckResult], ...] = (
    check_database,
    check_lease,
    check_archive,
    check_imap,
    check_smtp,
    check_calendar,
    check_backlog,
)


def run_checks(app: App) -> list[CheckResult]:
    """Run every check; a check that raises is reported as failed with the error."""
    results = []
    for check in CHECKS:
        try:
            results.append(check(app))
        except Exception as exc:  # noqa: BLE001 - doctor reports every problem instead of stopping at one
            log.exception("doctor check %s failed", check.__name__)
            results.append(CheckResult(check.__name__.removeprefix("check_"), ok=False, detail=f"检查出错：{exc}"))
    return results
