"""Typed settings loaded from a TOML file and validated before anything connects.

Every problem (unknown key, missing value, wrong type, a rule across keys) is collected and
reported at once, in Chinese, naming the key. The caller then exits non-zero.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
import re
import tomllib
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError
from parsers.model import DocumentLimits

CONFIG_ENV = "ZWXX_CONFIG"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_TIME_RANGE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


class ImapSecurity(enum.StrEnum):
    IMAPS = "imaps"
    STARTTLS = "starttls"
    PLAIN = "plain"  # loopback only


class SmtpSecurity(enum.StrEnum):
    SMTPS = "smtps"
    STARTTLS = "starttls"
    PLAIN = "plain"  # loopback only


class AfterStore(enum.StrEnum):
    """Post-action on the server once a message is committed locally; nothing is ever deleted."""

    FLAG = "flag"
    MOVE = "move"


@dataclass(frozen=True)
class ImapSettings:
    host: str
    username: str
    port: int = 993
    security: ImapSecurity = ImapSecurity.IMAPS
    password: str = ""
    password_env: str = ""
    ca_file: Path | None = None
    folder: str = "INBOX"
    after_store: AfterStore = AfterStore.FLAG
    flag: str = "$Zwxx-Stored"
    move_to: str = ""
    batch_size: int = 100
    parse_workers: int = 0  # 0: one per CPU; 1: parse in the daemon's own process
    idle: bool = True
    idle_timeout: int = 300
    poll_interval: int = 60
    reconnect_max_delay: int = 300
    timeout: int = 60
    send_id: bool = True
    max_message_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    from_address: str
    port: int = 465
    security: SmtpSecurity = SmtpSecurity.SMTPS
    username: str = ""
    password: str = ""
    password_env: str = ""
    ca_file: Path | None = None
    from_name: str = "政务信息报送邮箱"
    timeout: int = 60


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///var/zwxx.db"


@dataclass(frozen=True)
class ArchiveSettings:
    dir: Path = Path("var/archive")


@dataclass(frozen=True)
class OfficeSettings:
    name: str = "政务信息工作组办公室"
    addresses: tuple[str, ...] = ()
    leaders: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnitsSettings:
    file: Path = Path("units.toml")


@dataclass(frozen=True)
class GeneralSettings:
    timezone: str = "Asia/Shanghai"
    account: str = "default"
    log_level: str = "INFO"
    standby_interval: int = 5  # seconds between a standby node's tries to take the lease


@dataclass(frozen=True)
class OutboxSettings:
    max_attempts: int = 12
    retry_initial: int = 30
    retry_max: int = 3600
    send_interval: int = 10


class DocConverter(enum.StrEnum):
    """Program that turns legacy .doc/.wps files into text; none means they get a warning."""

    NONE = "none"
    LIBREOFFICE = "libreoffice"
    ANTIWORD = "antiword"


@dataclass(frozen=True)
class DocumentSettings:
    doc_converter: DocConverter = DocConverter.NONE
    converter_path: str = ""  # empty: look the program up on PATH
    converter_timeout: int = 60
    max_document_bytes: int = 50 * 1024 * 1024
    zip_max_members: int = 50
    zip_max_total_bytes: int = 100 * 1024 * 1024
    zip_max_ratio: int = 100
    zip_max_depth: int = 2

    def limits(self) -> DocumentLimits:
        """Return the bounds the parsers apply to attachments."""
        return DocumentLimits(
            max_document_bytes=self.max_document_bytes,
            zip_max_members=self.zip_max_members,
            zip_max_total_bytes=self.zip_max_total_bytes,
            zip_max_ratio=self.zip_max_ratio,
            zip_max_depth=self.zip_max_depth,
        )


@dataclass(frozen=True)
class ItemSettings:
    revision_window_days: int = 7


@dataclass(frozen=True)
class ApprovalSettings:
    secret: str = ""
    secret_env: str = ""
    token_days: int = 7
    reply_address: str = ""  # empty: smtp.from_address
    plus_addressing: bool = True
    check_authentication: bool = False
    authserv_id: str = ""
    required_methods: tuple[str, ...] = ("dmarc",)
    max_batch: int = 20


@dataclass(frozen=True)
class DigestSettings:
    times: tuple[str, ...] = ("09:00", "16:00")
    working_days_only: bool = True
    attach_documents: bool = True
    max_attachment_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True)
class NoticeSettings:
    unit_on_submit: bool = False
    unit_on_adopt: bool = False


@dataclass(frozen=True)
class ScoringSettings:
    file: Path | None = None


@dataclass(frozen=True)
class CalendarSettings:
    file: Path | None = None
    working_hours: tuple[str, ...] = ("08:30-12:00", "14:00-17:30")


@dataclass(frozen=True)
class TimeLimitSettings:
    news_working_days: int = 1  # 工作动态: submitted within this many working days of receipt
    press_conference_days_before: int = 2  # 新闻通气会: reaches 两办 this many working days before
    economic_analysis_day: int = 10  # 经济运行分析: due on the first such day of a month on or after receipt
    emergency_alert: bool = True  # 重大突发事件: alert the office and the leaders at once, any hour


@dataclass(frozen=True)
class CommissionSettings:
    reminder_days: tuple[int, ...] = (3, 1)  # working days before the deadline
    default_deadline_days: int = 5  # working days, when a 约稿 mail names no deadline


@dataclass(frozen=True)
class TargetSettings:
    file: Path | None = None
    reminder_day: int = 20  # day of the month on which units behind their pro-rata target are reminded


@dataclass(frozen=True)
class BulletinSettings:
    time: str = "09:00"  # on the first working day of the month
    to_units: bool = True
    to_leaders: bool = True
    extra_recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpsSettings:
    admins: tuple[str, ...] = ()  # addresses of the daily operations digest; empty: none is sent
    time: str = "08:00"


@dataclass(frozen=True)
class Settings:
    imap: ImapSettings
    smtp: SmtpSettings
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    office: OfficeSettings = field(default_factory=OfficeSettings)
    units: UnitsSettings = field(default_factory=UnitsSettings)
    general: GeneralSettings = field(default_factory=GeneralSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    documents: DocumentSettings = field(default_factory=DocumentSettings)
    items: ItemSettings = field(default_factory=ItemSettings)
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    notices: NoticeSettings = field(default_factory=NoticeSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    time_limits: TimeLimitSettings = field(default_factory=TimeLimitSettings)
    commissions: CommissionSettings = field(default_factory=CommissionSettings)
    targets: TargetSettings = field(default_factory=TargetSettings)
    bulletins: BulletinSettings = field(default_factory=BulletinSettings)
    ops: OpsSettings = field(default_factory=OpsSettings)
    path: Path | None = None

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.general.timezone)

    def imap_password(self) -> str:
        """Return the IMAP password, from the environment variable when one is named."""
        return _secret(self.imap.password, self.imap.password_env)

    def smtp_password(self) -> str:
        return _secret(self.smtp.password, self.smtp.password_env)

    def approval_secret(self) -> bytes:
        """Return the key that signs approval tokens (empty when none is configured)."""
        return _secret(self.approval.secret, self.approval.secret_env).encode()

    @property
    def reply_address(self) -> str:
        """The address leaders reply to; the approval token is added to its local part."""
        return self.approval.reply_address or self.smtp.from_address

    def is_office(self, address: str | None) -> bool:
        """Tell whether ``address`` is one of the office's own addresses (case-insensitive)."""
        return address is not None and address.lower() in {a.lower() for a in self.office.addresses}

    def is_leader(self, address: str | None) -> bool:
        """Tell whether ``address`` is one of the leaders' addresses (case-insensitive)."""
        return address is not None and address.lower() in {a.lower() for a in self.office.leaders}


def _secret(value: str, env_name: str) -> str:
    if env_name:
        return os.environ.get(env_name, "")
    return value


_TYPE_NAMES = {str: "字符串", int: "整数", bool: "布尔值（true/false）", float: "数字", Path: "路径字符串"}


def _describe(value: object) -> str:
    kinds = {str: "字符串", int: "整数", bool: "布尔值", float: "数字", list: "数组", dict: "表"}
    return f"{kinds.get(type(value), type(value).__name__)} {value!r}"


def _convert(key: str, value: object, hint: Any, base: Path, problems: list[str]) -> object:
    """Convert one TOML value to the annotated type; record a problem and return None when it fails."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _convert(key, value, inner[0], base, problems)
    if origin is tuple and typing.get_args(hint)[0] is int:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            problems.append(f"配置项 {key} 应为整数数组，实际为 {_describe(value)}")
            return None
        return tuple(value)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"配置项 {key} 应为字符串数组，实际为 {_describe(value)}")
            return None
        return tuple(v.strip() for v in value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = "、".join(str(m.value) for m in hint)
        try:
            return hint(value)
        except ValueError:
            problems.append(f"配置项 {key} 的值 {value!r} 无效，可选值为：{allowed}")
            return None
    if hint is Path:
        if not isinstance(value, str) or not value:
            problems.append(f"配置项 {key} 应为非空路径字符串，实际为 {_describe(value)}")
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path
    # bool is a subclass of int: check it first so that `port = true` is rejected.
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        problems.append(f"配置项 {key} 应为整数，实际为 {_describe(value)}")
        return None
    if hint in (str, bool, float) and not isinstance(value, hint):
        problems.append(f"配置项 {key} 应为{_TYPE_NAMES[hint]}，实际为 {_describe(value)}")
        return None
    return value


def _build(cls: type, key_prefix: str, data: object, base: Path, problems: list[str]) -> Any:
    """Build the dataclass ``cls`` from a TOML table, recording every problem."""
    if not isinstance(data, dict):
        problems.append(f"配置项 [{key_prefix}] 应为表，实际为 {_describe(data)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "path"}
    for unknown in sorted(set(data) - set(fields)):
        name = f"{key_prefix}.{unknown}" if key_prefix else f"[{unknown}]"
        problems.append(f"未知的配置项 {name}（请检查拼写，或对照 config.example.toml）")
    values: dict[str, object] = {}
    incomplete = False
    for name, spec in fields.items():
        key = f"{key_prefix}.{name}" if key_prefix else name
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            section = _build(hint, key, data.get(name, {}), base, problems)
            if section is None:
                incomplete = True
            values[name] = section
            continue
        if name not in data:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                problems.append(f"缺少必填配置项 {key}")
            continue
        converted = _convert(key, data[name], hint, base, problems)
        if converted is not None:
            values[name] = converted
    if incomplete:
        return None  # a section lacks a required value; already reported
    try:
        return cls(**values)
    except TypeError:
        return None  # a required value is missing; already reported


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_connections(settings: Settings, problems: list[str], *, require_secrets: bool) -> None:
    """Check security, post-action and password rules of the IMAP and SMTP sections."""
    imap, smtp = settings.imap, settings.smtp
    if imap.security is ImapSecurity.PLAIN and not _is_loopback(imap.host):
        problems.append(
            f'imap.security = "plain" 只允许用于本机地址，imap.host 为 {imap.host!r}；请改用 imaps 或 starttls'
        )
    if smtp.security is SmtpSecurity.PLAIN and not _is_loopback(smtp.host):
        problems.append(
            f'smtp.security = "plain" 只允许用于本机地址，smtp.host 为 {smtp.host!r}；请改用 smtps 或 starttls'
        )

    if imap.after_store is AfterStore.MOVE and not imap.move_to:
        problems.append('imap.after_store = "move" 时必须填写 imap.move_to（登记后移入的文件夹）')
    if imap.after_store is AfterStore.MOVE and imap.move_to == imap.folder:
        problems.append("imap.move_to 不能与 imap.folder 相同")

    for section, password, env_name, needed in (
        ("imap", imap.password, imap.password_env, True),
        ("smtp", smtp.password, smtp.password_env, bool(smtp.username)),
    ):
        if password and env_name:
            problems.append(f"{section}.password 与 {section}.password_env 只能填写一个")
        elif require_secrets and needed and env_name and env_name not in os.environ:
            problems.append(
                f"{section}.password_env 指定的环境变量 {env_name} 未设置：请先设置它"
                f"（例如 export {env_name}=密码），或改用 {section}.password"
            )
    approval = settings.approval
    if approval.secret and approval.secret_env:
        problems.append("approval.secret 与 approval.secret_env 只能填写一个")
    elif settings.office.leaders and not approval.secret and not approval.secret_env:
        problems.append("填写了 office.leaders 时须配置审批签名密钥：approval.secret_env（推荐）或 approval.secret")
    elif require_secrets and approval.secret_env and not os.environ.get(approval.secret_env):
        problems.append(
            f"approval.secret_env 指定的环境变量 {approval.secret_env} 未设置：请先设置它"
            "（一串足够长的随机字符，例如 openssl rand -hex 32 的输出）"
        )
    elif approval.secret and len(approval.secret) < 16:
        problems.append("approval.secret 太短：至少 16 个字符，建议使用 openssl rand -hex 32 生成")
    if not imap.password and not imap.password_env:
        problems.append("缺少 IMAP 密码：请填写 imap.password_env（推荐）或 imap.password")
    if smtp.username and not smtp.password and not smtp.password_env:
        problems.append("填写了 smtp.username 时还须填写 smtp.password_env 或 smtp.password")


def _check_numbers(settings: Settings, problems: list[str]) -> None:
    """Check ports, counts and durations."""
    imap, outbox = settings.imap, settings.outbox
    if imap.parse_workers < 0:
        problems.append(f"配置项 imap.parse_workers 不能为负数（0 表示按 CPU 核数），实际为 {imap.parse_workers}")
    for key, value in (("imap.port", imap.port), ("smtp.port", settings.smtp.port)):
        if not 0 < value < 65536:
            problems.append(f"配置项 {key} 应在 1–65535 之间，实际为 {value}")

    for key, value in (
        ("imap.batch_size", imap.batch_size),
        ("imap.idle_timeout", imap.idle_timeout),
        ("imap.poll_interval", imap.poll_interval),
        ("imap.reconnect_max_delay", imap.reconnect_max_delay),
        ("imap.max_message_bytes", imap.max_message_bytes),
        ("imap.timeout", imap.timeout),
        ("smtp.timeout", settings.smtp.timeout),
        ("outbox.max_attempts", outbox.max_attempts),
        ("outbox.retry_initial", outbox.retry_initial),
        ("outbox.retry_max", outbox.retry_max),
        ("outbox.send_interval", outbox.send_interval),
        ("documents.converter_timeout", settings.documents.converter_timeout),
        ("documents.max_document_bytes", settings.documents.max_document_bytes),
        ("documents.zip_max_members", settings.documents.zip_max_members),
        ("documents.zip_max_total_bytes", settings.documents.zip_max_total_bytes),
        ("documents.zip_max_ratio", settings.documents.zip_max_ratio),
        ("documents.zip_max_depth", settings.documents.zip_max_depth),
        ("items.revision_window_days", settings.items.revision_window_days),
        ("general.standby_interval", settings.general.standby_interval),
        ("approval.token_days", settings.approval.token_days),
        ("approval.max_batch", settings.approval.max_batch),
        ("digest.max_attachment_bytes", settings.digest.max_attachment_bytes),
        ("time_limits.news_working_days", settings.time_limits.news_working_days),
        ("time_limits.press_conference_days_before", settings.time_limits.press_conference_days_before),
        ("commissions.default_deadline_days", settings.commissions.default_deadline_days),
    ):
        if value <= 0:
            problems.append(f"配置项 {key} 应为正整数，实际为 {value}")
    if imap.idle_timeout > 29 * 60:
        problems.append("imap.idle_timeout 不能超过 1740 秒（RFC 2177 要求每 29 分钟内重新发出 IDLE）")


def _check_names(settings: Settings, problems: list[str]) -> None:
    """Check the time zone, the addresses and the database URL scheme."""
    try:
        zoneinfo.ZoneInfo(settings.general.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(
            f'配置项 general.timezone 的时区 {settings.general.timezone!r} 不存在，例如应为 "Asia/Shanghai"'
        )

    if settings.general.log_level.upper() not in LOG_LEVELS:
        problems.append(
            f"配置项 general.log_level 的值 {settings.general.log_level!r} 无效，可选值为：{'、'.join(LOG_LEVELS)}"
        )

    for key, addresses in (
        ("office.addresses", settings.office.addresses),
        ("office.leaders", settings.office.leaders),
    ):
        for address in addresses:
            if "@" not in address:
                problems.append(f"配置项 {key} 中的 {address!r} 不是邮箱地址")
    if settings.approval.reply_address and "@" not in settings.approval.reply_address:
        problems.append(f"配置项 approval.reply_address 的值 {settings.approval.reply_address!r} 不是邮箱地址")
    if settings.approval.check_authentication and not settings.approval.authserv_id:
        problems.append(
            "approval.check_authentication = true 时须填写 approval.authserv_id"
            "（本单位收信服务器在 Authentication-Results 头中的名称）"
        )
    for method in settings.approval.required_methods:
        if method.lower() not in ("dkim", "spf", "dmarc"):
            problems.append(f"配置项 approval.required_methods 中的 {method!r} 无效，可选值为：dkim、spf、dmarc")
    for value in settings.digest.times:
        if not _TIME_OF_DAY.match(value):
            problems.append(f'配置项 digest.times 中的 {value!r} 不是时刻，应写作 "09:00"')
    if not 1 <= settings.time_limits.economic_analysis_day <= 28:
        problems.append("配置项 time_limits.economic_analysis_day 应在 1–28 之间（每月的第几日）")
    if any(days < 1 for days in settings.commissions.reminder_days):
        problems.append("配置项 commissions.reminder_days 中的每个数都应为正整数（截止前的工作日数）")
    if not 1 <= settings.targets.reminder_day <= 28:
        problems.append("配置项 targets.reminder_day 应在 1–28 之间（每月的第几日）")
    if not _TIME_OF_DAY.match(settings.ops.time):
        problems.append(f'配置项 ops.time 的值 {settings.ops.time!r} 不是时刻，应写作 "08:00"')
    for address in settings.ops.admins:
        if "@" not in address:
            problems.append(f"配置项 ops.admins 中的 {address!r} 不是邮箱地址")
    if not _TIME_OF_DAY.match(settings.bulletins.time):
        problems.append(f'配置项 bulletins.time 的值 {settings.bulletins.time!r} 不是时刻，应写作 "09:00"')
    for value in settings.calendar.working_hours:
        if not _TIME_RANGE.match(value):
            problems.append(f'配置项 calendar.working_hours 中的 {value!r} 不是时段，应写作 "08:30-12:00"')
    if "@" not in settings.smtp.from_address:
        problems.append(f"配置项 smtp.from_address 的值 {settings.smtp.from_address!r} 不是邮箱地址")

    if not settings.database.url.startswith(("sqlite:", "postgresql")):
        problems.append("配置项 database.url 应以 sqlite:/// 或 postgresql+psycopg:// 开头")


def _check_rules(settings: Settings, problems: list[str], *, require_secrets: bool) -> None:
    """Check rules that involve more than one key, or a value's range."""
    _check_connections(settings, problems, require_secrets=require_secrets)
    _check_numbers(settings, problems)
    _check_names(settings, problems)


def resolve_database_url(url: str, base: Path) -> str:
    """Make a relative SQLite path relative to the configuration file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str(base / url[len(prefix) :])
    return url


def load_settings_from_dict(
    data: dict[str, object], *, base: Path, path: Path | None = None, require_secrets: bool = True
) -> Settings:
    """Validate parsed TOML and return Settings; raise ConfigError listing every problem.

    With ``require_secrets`` false, password environment variables may be unset: commands that
    only read the database (the register, the outbox) need no mail password.
    """
    problems: list[str] = []
    settings: Settings | None = _build(Settings, "", data, base, problems)
    if settings is None:
        # A required key is missing, so the rules across keys cannot be checked yet.
        raise ConfigError(problems or ["配置文件缺少 [imap] 或 [smtp] 节"])
    # Keys whose value was rejected hold their defaults here, so the rules still run on the rest.
    _check_rules(settings, problems, require_secrets=require_secrets)
    if problems:
        raise ConfigError(problems)
    # Defaults are relative paths too: anchor every one at the configuration file's folder.
    return dataclasses.replace(
        settings,
        database=dataclasses.replace(settings.database, url=resolve_database_url(settings.database.url, base)),
        archive=dataclasses.replace(settings.archive, dir=base / settings.archive.dir),
        units=dataclasses.replace(settings.units, file=base / settings.units.file),
        approval=dataclasses.replace(
            settings.approval, required_methods=tuple(m.lower() for m in settings.approval.required_methods)
        ),
        path=path,
    )


def load_settings(path: Path | None = None, *, require_secrets: bool = True) -> Settings:
    """Load the file named by ``path``, else by $ZWXX_CONFIG; raise ConfigError on any problem."""
    if path is None:
        env_path = os.environ.get(CONFIG_ENV)
        if not env_path:
            raise ConfigError([f"未指定配置文件：请使用 --config 参数或设置环境变量 {CONFIG_ENV}"])
        path = Path(env_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([f"配置文件不存在：{path}"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"无法读取配置文件 {path}：{exc}"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"配置文件 {path} 不是合法的 TOML（{_toml_position(str(exc))}）：{exc}"]) from exc
    return load_settings_from_dict(
        data, base=path.resolve().parent, path=path.resolve(), require_secrets=require_secrets
    )


def _toml_position(message: str) -> str:
    """Return tomllib's "(at line L, column C)" as Chinese, or a generic hint when absent."""
    match = re.search(r"at line (\d+), column (\d+)", message)
    if match is None:
        return "请检查引号、括号和等号"
    return f"第 {match.group(1)} 行第 {match.group(2)} 列附近"
