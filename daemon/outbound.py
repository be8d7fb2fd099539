"""The persistent outbox and the sender job: the only code that talks SMTP."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from daemon.clock import Clock
from daemon.config import Settings, SmtpSecurity
from daemon.errors import SendError, connection_failure
from daemon.models import OutboxMail, OutboxState

log = logging.getLogger(__name__)


def queue_mail(
    session: Session,
    *,
    key: str,
    purpose: str,
    mail: EmailMessage,
    recipients: list[str],
    now: datetime,
    item_id: int | None = None,
    message_db_id: int | None = None,
) -> OutboxMail | None:
    """Add a mail to the outbox in the caller's transaction; return None when ``key`` is queued already."""
    existing = session.scalar(select(OutboxMail.id).where(OutboxMail.key == key))
    if existing is not None:
        return None
    row = OutboxMail(
        key=key,
        purpose=purpose,
        mail_from=mail["From"].addresses[0].addr_spec if mail["From"] else "",
        recipients="\n".join(recipients),
        message_id=str(mail["Message-ID"]),
        raw=mail.as_bytes(policy=policy.SMTP),
        state=OutboxState.PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
        item_id=item_id,
        message_db_id=message_db_id,
    )
    session.add(row)
    session.flush()
    return row


# Mails sent over one SMTP connection by send_all_due before it reconnects.
SEND_ROUND = 50


@dataclass
class SendSummary:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def connect_smtp(settings: Settings) -> smtplib.SMTP:
    """Connect and log in to the SMTP server; raise SendError with a Chinese reason on failure."""
    smtp = settings.smtp
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    try:
        if smtp.security is SmtpSecurity.SMTPS:
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
            if smtp.security is SmtpSecurity.STARTTLS:
                client.starttls(context=context)
        if smtp.username:
            client.login(smtp.username, settings.smtp_password())
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(
            f"SMTP 服务器 {smtp.host}:{smtp.port} 拒绝登录（{exc.smtp_code}）：请检查 smtp.username 和密码"
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(
            f"SMTP 服务器 {smtp.host}:{smtp.port} 不支持登录（AUTH）：请检查 smtp.security，"
            "或在无需登录时清空 smtp.username"
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(
            f"无法连接 SMTP 服务器 {smtp.host}:{smtp.port}：{connection_failure(exc)}；"
            "请检查 smtp.host、smtp.port 和 smtp.security"
        ) from exc
    return client


def _retry_delay(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.outbox.retry_initial * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.outbox.retry_max))


def recover_interrupted(session_factory: sessionmaker[Session]) -> int:
    """Put mails left in SENDING by a crash back to PENDING; return how many.

    The SMTP server may or may not have accepted such a mail. It is sent again with the same
    Message-ID, so a receiving client can tell the copies apart from new mail.
    """
    record_unrecorded_sent(session_factory)
    with session_factory.begin() as session:
        result = session.execute(
            update(OutboxMail).where(OutboxMail.state == OutboxState.SENDING).values(state=OutboxState.PENDING)
        )
        count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.warning("outbox: %d mail(s) were interrupted while sending and will be sent again", count)
    return count


def _claim_due(session_factory: sessionmaker[Session], now: datetime, limit: int) -> list[OutboxMail]:
    """Mark up to ``limit`` due mails SENDING and return them (row locks skip what another node holds)."""
    with session_factory.begin() as session:
        rows = list(
            session.scalars(
                select(OutboxMail)
                .where(OutboxMail.state == OutboxState.PENDING, OutboxMail.next_attempt_at <= now)
                .order_by(OutboxMail.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            row.state = OutboxState.SENDING
            row.attempts += 1
        return rows


def send_due(
    session_factory: sessionmaker[Session], settings: Settings, clock: Clock, *, limit: int = 50
) -> SendSummary:
    """Deliver the due outbox mails over one SMTP connection; reschedule or fail the ones that bounce."""
    summary = SendSummary()
    record_unrecorded_sent(session_factory)
    rows = _claim_due(session_factory, clock.now(), limit)
    if not rows:
        return summary
    try:
        client = connect_smtp(settings)
    except SendError as exc:
        for row in rows:
            _record_failure(session_factory, settings, clock, row, str(exc), permanent=False, summary=summary)
        raise
    try:
        for row in rows:
            _send_one(session_factory, settings, clock, client, row, summary)
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return summary


def send_all_due(session_factory: sessionmaker[Session], settings: Settings, clock: Clock) -> SendSummary:
    """Deliver every outbox mail that is due now, in rounds of send_due, and add up the rounds.

    A round that handled fewer mails than its limit found nothing more due: retried mails wait
    for their next attempt time, so the loop ends.
    """
    total = SendSummary()
    while True:
        summary = send_due(session_factory, settings, clock, limit=SEND_ROUND)
        total.sent += summary.sent
        total.retried += summary.retried
        total.failed += summary.failed
        if summary.sent + summary.retried + summary.failed < SEND_ROUND:
            return total


def _send_one(
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    client: smtplib.SMTP,
    row: OutboxMail,
    summary: SendSummary,
) -> None:
    try:
        refused = client.sendmail(row.mail_from, row.recipient_list, row.raw)
    except smtplib.SMTPRecipientsRefused as exc:
        _record_failure(
            session_factory,
            settings,
            clock,
            row,
            f"all recipients refused: {exc.recipients}",
            permanent=_all_permanent(exc.recipients),
            summary=summary,
        )
        return
    except smtplib.SMTPResponseException as exc:
        _record_failure(
            session_factory,
            settings,
            clock,
            row,
            f"{exc.smtp_code} {exc.smtp_error!r}",
            permanent=500 <= exc.smtp_code < 600,
            summary=summary,
        )
        return
    except (OSError, smtplib.SMTPException) as exc:
        _record_failure(session_factory, settings, clock, row, str(exc), permanent=False, summary=summary)
        raise SendError(f"发送第 {row.id} 封待发邮件时与 SMTP 服务器的连接中断：{exc}") from exc
    note = f"refused by some recipients: {refused}" if refused else None
    try:
        _record_sent(session_factory, row.id, clock.now(), note)
    except SQLAlchemyError:
        # The server took the mail but the database is unreachable: remember it in this process, so
        # that it is recorded as sent when the database is back instead of being sent again.
        _SENT_UNRECORDED[row.id] = (clock.now(), note)
        log.error("outbox: mail %d %s was sent but could not be recorded yet", row.id, row.message_id)
        raise
    summary.sent += 1
    log.info(
        "outbox: sent %s mail %d %s to %d recipient(s)", row.purpose, row.id, row.message_id, len(row.recipient_list)
    )


# Mails the SMTP server accepted while the database could not record it: id -> (sent at, note).
_SENT_UNRECORDED: dict[int, tuple[datetime, str | None]] = {}


def _record_sent(session_factory: sessionmaker[Session], outbox_id: int, at: datetime, note: str | None) -> None:
    with session_factory.begin() as session:
        stored = session.get_one(OutboxMail, outbox_id)
        stored.state = OutboxState.SENT
        stored.sent_at = at
        stored.last_error = note


def record_unrecorded_sent(session_factory: sessionmaker[Session]) -> int:
    """Record as sent the mails the server accepted while the database was down; return how many."""
    done = 0
    for outbox_id, (at, note) in list(_SENT_UNRECORDED.items()):
        _record_sent(session_factory, outbox_id, at, note)
        del _SENT_UNRECORDED[outbox_id]
        done += 1
    if done:
        log.info("outbox: recorded %d mail(s) sent while the database was unavailable", done)
    return done


def _all_permanent(recipients: dict[str, tuple[int, bytes]]) -> bool:
    return all(500 <= code < 600 for code, _ in recipients.values())


def _record_failure(
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    row: OutboxMail,
    error: str,
    *,
    permanent: bool,
    summary: SendSummary,
) -> None:
    with session_factory.begin() as session:
        stored = session.get_one(OutboxMail, row.id)
        stored.last_error = error
        if permanent or stored.attempts >= settings.outbox.max_attempts:
            stored.state = OutboxState.FAILED
            summary.failed += 1
            log.error(
                "outbox: giving up on %s mail %d after %d attempt(s): %s", row.purpose, row.id, stored.attempts, error
            )
        else:
            stored.state = OutboxState.PENDING
            stored.next_attempt_at = clock.now() + _retry_delay(settings, stored.attempts)
            summary.retried += 1
            log.warning(
                "outbox: attempt %d of %s mail %d failed, retrying at %s: %s",
                stored.attempts,
                row.purpose,
                row.id,
                stored.next_attempt_at.isoformat(),
                error,
            )
