"""The daily operations digest to the administrators: what needs a look, from the database alone.

It repeats the checks of ``zwxx doctor`` that need no mail server (database, archive, calendar,
backlog) and lists the replies and command mails refused in the last day (a failed sender or
authentication check shows there first). One digest per day: the outbox key carries the date.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.app import App
from daemon.doctor import check_archive, check_backlog, check_calendar, check_database, mark_of
from daemon.models import Message, MessageState
from daemon.notices import build_mail, local_time
from daemon.outbound import queue_mail
from daemon.templating import render

log = logging.getLogger(__name__)


def send_ops_digest(session: Session, app: App) -> bool:
    """Queue today's operations digest to ``ops.admins``; False when none is configured or it was queued."""
    settings = app.settings
    if not settings.ops.admins:
        return False
    now = app.clock.now()
    day = now.astimezone(settings.tz).date()
    results = [check(app) for check in (check_database, check_archive, check_calendar, check_backlog)]
    refused = [
        {
            "sender": message.sender or "（无发件人）",
            "subject": message.subject or "（无标题）",
            "fetched_at": local_time(message.fetched_at, settings),
            "reason": (message.reason or "").splitlines()[0] if message.reason else "",
        }
        for message in session.scalars(
            select(Message)
            .where(Message.state == MessageState.UNDECIDED, Message.fetched_at >= now - timedelta(days=1))
            .order_by(Message.id)
        )
    ]
    body = render(
        "office/ops_digest.txt.j2",
        day=f"{day.year}年{day.month}月{day.day}日",
        lines=[{"mark": mark_of(r), "name": r.name, "detail": r.detail} for r in results],
        refused=refused,
    )
    problems = sum(1 for r in results if not r.ok or r.warning) + len(refused)
    key = f"ops:{day.isoformat()}"
    subject = f"【运行情况】{day.month}月{day.day}日：" + (f"{problems} 项需要留意" if problems else "一切正常")
    mail = build_mail(settings, to=list(settings.ops.admins), subject=subject, body=body, key=key, kind="ops", now=now)
    row = queue_mail(session, key=key, purpose="ops_digest", mail=mail, recipients=list(settings.ops.admins), now=now)
    log.info("operations digest %s: %d item(s) to look at, queued=%s", day, problems, row is not None)
    return row is not None
