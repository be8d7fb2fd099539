"""Parsing of ``Authentication-Results`` header fields (RFC 8601) and the DKIM/SPF/DMARC check on them.

The parser is lenient: CFWS (nested comments, folding whitespace) may appear wherever RFC 8601 allows
it, a resinfo it cannot read is skipped and counted, and no input makes it raise. The check trusts only
header fields whose authserv-id is the receiving server's own, because a sender can add any other.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

_FIELD_NAME = "authentication-results:"
_WHITESPACE = frozenset(" \t\r\n")
_DIGITS = frozenset("0123456789")
_KEYWORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
# A value ends at whitespace, a comment, a quoted string or the next resinfo. "=", "/", "+", "@" and "."
# stay inside it, because header.b carries base64 and smtp.mailfrom carries an address.
_VALUE_STOPS = frozenset(' \t\r\n()";')
# The authserv-id also ends at "=" and "/", so that a header without one (``spf=pass ...``) is detected.
_AUTHSERV_ID_STOPS = _VALUE_STOPS | frozenset("=/")
# Longer digit runs are rejected before int(), which raises above 4300 digits in Python 3.11.
_MAX_VERSION_DIGITS = 9
_DOMAIN_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_MAX_DOMAIN_LENGTH = 253
_MAX_SHOWN_LENGTH = 60

SUPPORTED_METHODS = ("dkim", "spf", "dmarc")
_METHOD_LABELS = {"dkim": "DKIM", "spf": "SPF", "dmarc": "DMARC"}


@dataclass(frozen=True)
class ResultProperty:
    """One ``ptype.property=value`` item of a resinfo, such as ``header.d=example.com``."""

    ptype: str  # lower case: smtp, header, body, policy
    name: str  # lower case: mailfrom, d, i, from
    value: str  # as written, with the quotes of a quoted string removed

    @property
    def key(self) -> str:
        """The property's full name, such as ``header.d``."""
        return f"{self.ptype}.{self.name}"


@dataclass(frozen=True)
class MethodResult:
    """The result of one authentication method, one resinfo of the header field."""

    method: str  # lower case: dkim, spf, dmarc, arc, iprev, compauth or any other keyword
    result: str  # lower case: pass, fail, none, softfail, neutral, temperror, permerror, policy, ...
    version: int | None = None  # the method version of ``dkim/1=pass``
    reason: str | None = None  # the reasonspec value, ``reason="..."``
    properties: tuple[ResultProperty, ...] = ()
    # Non-standard ``key=value`` items without a ptype, such as Microsoft 365's ``action=none``.
    extras: tuple[tuple[str, str], ...] = ()

    def value_of(self, key: str) -> str | None:
        """Return the value of the first property named ``key`` (``header.d``), or None when it is absent."""
        expected = key.lower()
        for item in self.properties:
            if item.key == expected:
                return item.value
        return None


@dataclass(frozen=True)
class AuthResults:
    """One parsed ``Authentication-Results`` header field."""

    authserv_id: str  # as written, or empty when the field has none (Microsoft 365 writes none)
    version: int | None
    results: tuple[MethodResult, ...]  # empty for ``; none``
    skipped: int = 0  # resinfo entries that could not be read and were left out

    def results_for(self, method: str) -> tuple[MethodResult, ...]:
        """Return the results of ``method`` (any case), in header order."""
        expected = method.lower()
        return tuple(result for result in self.results if result.method == expected)


class _Resinfo(Enum):
    """Outcomes of reading one resinfo that carry no method result."""

    EMPTY = "empty"  # nothing between two semicolons, or a trailing semicolon
    NO_RESULT = "none"  # the RFC 8601 ``; none`` form
    INVALID = "invalid"


class _Scanner:
    """A cursor over a header field value that skips RFC 5322 comments and reads quoted strings."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_cfws(self) -> None:
        """Skip whitespace, line folding and comments. An unterminated comment runs to the end."""
        while not self.at_end():
            char = self.text[self.pos]
            if char in _WHITESPACE:
                self.pos += 1
            elif char == "(":
                self._skip_comment()
            else:
                return

    def _skip_comment(self) -> None:
        depth = 0
        while not self.at_end():
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                self.pos += 1
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    return
        self.pos = min(self.pos, len(self.text))

    def read_chars(self, allowed: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start : self.pos]

    def read_until(self, stops: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        return self.text[start : self.pos]

    def read_quoted(self) -> str:
        """Read a quoted string starting at its opening quote. An unterminated one runs to the end."""
        self.pos += 1
        chars: list[str] = []
        while not self.at_end():
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                break
            if char == "\\" and not self.at_end():
                char = self.text[self.pos]
                self.pos += 1
            elif char in "\r\n":
                continue  # folding inside a quoted string is removed (RFC 5322 section 3.2.4)
            chars.append(char)
        return "".join(chars)

    def read_value(self, stops: frozenset[str] = _VALUE_STOPS) -> str:
        if self.peek() == '"':
            return self.read_quoted()
        return self.read_until(stops)

    def skip_to_semicolon(self) -> None:
        """Move to the next ``;`` outside comments and quoted strings, or to the end."""
        while not self.at_end():
            char = self.text[self.pos]
            if char == ";":
                return
            if char == "(":
                self._skip_comment()
            elif char == '"':
                self.read_quoted()
            else:
                self.pos += 1

    def read_number(self) -> int | None:
        digits = self.read_chars(_DIGITS)
        if not digits or len(digits) > _MAX_VERSION_DIGITS:
            return None
        return int(digits)


def parse_authentication_results(value: str) -> AuthResults | None:
    """Parse the value of one ``Authentication-Results`` header field (RFC 8601 section 2.2).

    Args:
        value: the field body after the colon, folded or unfolded.

    Returns:
        The parsed field, or None when no authserv-id can be read or the text after it does not start a
        result list. A resinfo that cannot be read is left out and counted in ``skipped``. Does not raise
        for any str.
    """
    text = value.lstrip()
    if text[: len(_FIELD_NAME)].lower() == _FIELD_NAME:
        text = text[len(_FIELD_NAME) :]  # a caller passed the whole field line
    scanner = _Scanner(text)
    scanner.skip_cfws()
    if scanner.at_end():
        return None

    authserv_id, version = _read_authserv_id(scanner)
    if authserv_id is None:
        return None

    results: list[MethodResult] = []
    skipped = 0
    # Without an authserv-id the first resinfo has no ";" before it.
    expect_semicolon = authserv_id != ""
    while not scanner.at_end():
        if expect_semicolon:
            scanner.pos += 1  # the ";" that _read_authserv_id or skip_to_semicolon stopped at
        expect_semicolon = True

        outcome = _read_resinfo(scanner)
        if isinstance(outcome, MethodResult):
            results.append(outcome)
        elif outcome is _Resinfo.INVALID:
            skipped += 1
            scanner.skip_to_semicolon()

    return AuthResults(authserv_id=authserv_id, version=version, results=tuple(results), skipped=skipped)


def _read_authserv_id(scanner: _Scanner) -> tuple[str | None, int | None]:
    """Read the authserv-id and optional version, leaving the scanner at the first ``;`` or the end.

    Returns ("", None) with the scanner rewound when the field starts with a resinfo, and (None, None)
    when the field is unreadable.
    """
    start = scanner.pos
    authserv_id = scanner.read_value(_AUTHSERV_ID_STOPS)
    scanner.skip_cfws()
    if scanner.peek() in ("=", "/"):
        scanner.pos = start
        return "", None
    if not authserv_id.strip():
        return None, None

    version = None
    if scanner.peek() in _DIGITS:
        version = scanner.read_number()
        if version is None:
            return None, None
        scanner.skip_cfws()

    if not scanner.at_end() and scanner.peek() != ";":
        return None, None
    return authserv_id, version


def _read_resinfo(scanner: _Scanner) -> MethodResult | _Resinfo:
    """Read one resinfo that starts after a ``;``, stopping at the next ``;`` or the end."""
    scanner.skip_cfws()
    if scanner.at_end() or scanner.peek() == ";":
        return _Resinfo.EMPTY

    method = scanner.read_chars(_KEYWORD_CHARS).lower()
    if not method:
        return _Resinfo.INVALID
    scanner.skip_cfws()

    version = None
    if scanner.peek() == "/":
        scanner.pos += 1
        scanner.skip_cfws()
        version = scanner.read_number()
        if version is None:
            return _Resinfo.INVALID
        scanner.skip_cfws()

    if scanner.peek() != "=":
        ends_here = scanner.at_end() or scanner.peek() == ";"
        if method == "none" and version is None and ends_here:
            return _Resinfo.NO_RESULT
        return _Resinfo.INVALID
    scanner.pos += 1
    scanner.skip_cfws()
    result = scanner.read_chars(_KEYWORD_CHARS).lower()
    if not result:
        return _Resinfo.INVALID

    return _read_result_items(scanner, method, result, version)


def _read_result_items(scanner: _Scanner, method: str, result: str, version: int | None) -> MethodResult | _Resinfo:
    """Read the reasonspec and propspecs that follow ``method=result``."""
    reason: str | None = None
    properties: list[ResultProperty] = []
    extras: list[tuple[str, str]] = []
    while True:
        scanner.skip_cfws()
        if scanner.at_end() or scanner.peek() == ";":
            break

        key = scanner.read_chars(_KEYWORD_CHARS).lower()
        if not key:
            return _Resinfo.INVALID
        scanner.skip_cfws()

        if scanner.peek() == ".":
            scanner.pos += 1
            scanner.skip_cfws()
            name = scanner.read_chars(_KEYWORD_CHARS).lower()
            scanner.skip_cfws()
            if not name or scanner.peek() != "=":
                return _Resinfo.INVALID
            scanner.pos += 1
            scanner.skip_cfws()
            properties.append(ResultProperty(ptype=key, name=name, value=scanner.read_value()))
        elif scanner.peek() == "=":
            scanner.pos += 1
            scanner.skip_cfws()
            item_value = scanner.read_value()
            if key == "reason" and reason is None:
                reason = item_value
            else:
                extras.append((key, item_value))
        else:
            return _Resinfo.INVALID

    return MethodResult(
        method=method,
        result=result,
        version=version,
        reason=reason,
        properties=tuple(properties),
        extras=tuple(extras),
    )


@dataclass(frozen=True)
class MethodVerdict:
    """The outcome of one required method."""

    method: str  # dkim, spf or dmarc
    passed: bool
    reason: str  # Simplified Chinese for the user, or empty when passed


@dataclass(frozen=True)
class AuthVerdict:
    """Whether the receiving server's authentication results let a message count."""

    passed: bool
    # Simplified Chinese for the user, one sentence per failed method joined by "；", or empty when passed.
    reason: str
    methods: tuple[MethodVerdict, ...] = ()  # one per required method, empty when no result could be used


def check_authentication(
    headers: list[str], *, authserv_id: str, required: Sequence[str], from_domain: str
) -> AuthVerdict:
    """Check that the receiving server reports an aligned ``pass`` for every required method.

    Only header fields whose authserv-id equals ``authserv_id`` (case-insensitive) are read. For each
    method the topmost such field that reports it is used, so that a server writing one field per
    milter (OpenDKIM, OpenDMARC) is read whole. A pass counts only when aligned with ``from_domain``:
    the DKIM ``header.d`` (else the domain of ``header.i``) and the SPF ``smtp.mailfrom`` domain must equal
    it or be its parent or subdomain, and the DMARC ``header.from``, when present, must equal it. An SPF
    pass without ``smtp.mailfrom`` and a DMARC pass without ``header.from`` count.

    NOTE: a field with our authserv-id below the server's own is trusted for a method the server did not
    report. RFC 8601 section 5 has the receiving server remove such fields, and this check relies on it.

    Args:
        headers: every ``Authentication-Results`` value of the message, topmost (most recent) first.
        authserv_id: the receiving server's authserv-id, as configured.
        required: methods that must pass, from ``SUPPORTED_METHODS``.
        from_domain: the domain of the message's From address (an address is accepted too).

    Returns:
        The verdict, with a reason in Simplified Chinese when it did not pass.

    Raises:
        ValueError: ``authserv_id`` is empty, or ``required`` is empty or names an unsupported method.
    """
    expected_id = authserv_id.strip().casefold()
    if not expected_id:
        raise ValueError("authserv_id is empty. Set it to the receiving server's authserv-id")
    methods = _normalise_required(required)

    ours = [
        parsed
        for value in headers
        if (parsed := parse_authentication_results(value)) is not None and parsed.authserv_id.casefold() == expected_id
    ]
    if not ours:
        return AuthVerdict(passed=False, reason=f"没有本邮件服务器（{_shown(authserv_id.strip())}）的认证结果")

    domain = _normalise_domain(from_domain)
    if domain is None:
        return AuthVerdict(passed=False, reason=f"发件人地址的域名（{_shown(from_domain)}）无效，无法核对认证结果")

    verdicts = tuple(_check_method(method, _topmost_results(ours, method), domain) for method in methods)
    reasons = [verdict.reason for verdict in verdicts if not verdict.passed]
    return AuthVerdict(passed=not reasons, reason="；".join(reasons), methods=verdicts)


def _normalise_required(required: Sequence[str]) -> tuple[str, ...]:
    if isinstance(required, str):
        raise ValueError(f"required must be a sequence of method names, not the string {required!r}")
    methods: list[str] = []
    for name in required:
        method = name.strip().lower()
        if method not in SUPPORTED_METHODS:
            raise ValueError(f"unsupported method {name!r} in required. Use one of {', '.join(SUPPORTED_METHODS)}")
        if method not in methods:
            methods.append(method)
    if not methods:
        raise ValueError("required is empty. Name at least one of " + ", ".join(SUPPORTED_METHODS))
    return tuple(methods)


def _topmost_results(fields: list[AuthResults], method: str) -> tuple[MethodResult, ...]:
    for field in fields:
        found = field.results_for(method)
        if found:
            return found
    return ()


def _check_method(method: str, results: tuple[MethodResult, ...], domain: str) -> MethodVerdict:
    label = _METHOD_LABELS[method]
    if not results:
        return MethodVerdict(method, passed=False, reason=f"邮件服务器的认证结果中没有 {label} 结果")

    passes = [result for result in results if result.result == "pass"]
    if not passes:
        outcomes = "、".join(dict.fromkeys(result.result for result in results))
        return MethodVerdict(
            method, passed=False, reason=f"邮件服务器的认证结果中 {label} 未通过（{_shown(outcomes)}）"
        )

    # Each DKIM signature gives its own result, and one aligned pass is enough.
    problems = [_alignment_problem(method, result, domain) for result in passes]
    if None in problems:
        return MethodVerdict(method, passed=True, reason="")
    return MethodVerdict(method, passed=False, reason=f"邮件服务器的认证结果中 {problems[0]}")


def _alignment_problem(method: str, result: MethodResult, domain: str) -> str | None:
    """Describe why a pass is not aligned with the From domain, or return None when it is."""
    shown_domain = _display_domain(domain)
    if method == "dkim":
        signer = result.value_of("header.d") or result.value_of("header.i")
        if not signer:
            return "DKIM 已通过，但没有注明签名域"
        if not _is_aligned(_normalise_domain(signer), domain):
            return f"DKIM 签名域（{_shown(signer)}）与发件人域名（{shown_domain}）不一致"
        return None

    if method == "spf":
        mailfrom = result.value_of("smtp.mailfrom")
        if mailfrom is None:
            return None
        if not _is_aligned(_normalise_domain(mailfrom), domain):
            return f"SPF 检查的信封发件人（{_shown(mailfrom)}）与发件人域名（{shown_domain}）不一致"
        return None

    header_from = result.value_of("header.from")
    if header_from is not None and _normalise_domain(header_from) != domain:
        return f"DMARC 检查的发件人域名（{_shown(header_from)}）与本邮件的发件人域名（{shown_domain}）不一致"
    return None


def _normalise_domain(text: str) -> str | None:
    """Return the lower-case ASCII (IDNA) form of a domain or of an address's domain, or None if invalid."""
    candidate = text.strip().strip("<>").strip()
    if "@" in candidate:
        candidate = candidate.rpartition("@")[2]
    candidate = candidate.lower().removesuffix(".")
    if not candidate or len(candidate) > _MAX_DOMAIN_LENGTH:
        return None

    try:
        ascii_form = candidate.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if len(ascii_form) > _MAX_DOMAIN_LENGTH:
        return None
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in ascii_form.split(".")):
        return None
    return ascii_form


def _display_domain(domain: str) -> str:
    """Return the Unicode form of an IDNA domain for display, or the domain itself if it does not decode."""
    try:
        return domain.encode("ascii").decode("idna")
    except UnicodeError:
        return domain


def _is_aligned(candidate: str | None, domain: str) -> bool:
    """Tell whether two domains are equal, or one is a subdomain of the other.

    NOTE: this approximates DMARC relaxed alignment without the Public Suffix List, so example.gov.cn
    aligns with gov.cn. Single-label parents such as cn are rejected. A DMARC pass is stronger evidence,
    because DMARC verifiers find the organisational domain with that list (RFC 7489 section 3.2).
    """
    if candidate is None:
        return False
    if candidate == domain:
        return True

    shorter, longer = sorted((candidate, domain), key=len)
    return shorter.count(".") >= 1 and longer.endswith("." + shorter)


def _shown(text: str) -> str:
    """Make header text safe to show to a user: no control or format characters, bounded length."""
    cleaned = "".join(char for char in text if not unicodedata.category(char).startswith("C"))
    if len(cleaned) > _MAX_SHOWN_LENGTH:
        return cleaned[:_MAX_SHOWN_LENGTH] + "…"
    return cleaned
