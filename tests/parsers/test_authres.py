"""Authentication-Results parsing (RFC 8601) and the DKIM/SPF/DMARC check on a leader's reply.

The header values are shaped like those of real receiving servers, with invented domains and
shortened signatures.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.authres import (
    AuthResults,
    AuthVerdict,
    MethodResult,
    ResultProperty,
    check_authentication,
    parse_authentication_results,
)

SERVER = "mail.example.gov.cn"
FROM_DOMAIN = "wlt.example.gov.cn"
ALL_METHODS = ("dkim", "spf", "dmarc")

GMAIL_STYLE = (
    "mx.google.com;\r\n"
    "       dkim=pass header.i=@wlt.example.gov.cn header.s=s2048 header.b=Ab3+/xYz;\r\n"
    "       spf=pass (google.com: domain of leader@wlt.example.gov.cn designates 192.0.2.10 as permitted\r\n"
    "        sender) smtp.mailfrom=leader@wlt.example.gov.cn;\r\n"
    "       dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=wlt.example.gov.cn"
)
# Microsoft 365 writes no authserv-id, and adds action= and compauth.
OFFICE365_STYLE = (
    "spf=pass (sender IP is 192.0.2.25)\r\n smtp.mailfrom=wlt.example.gov.cn; dkim=pass\r\n"
    " (signature was verified) header.d=wlt.example.gov.cn;dmarc=pass action=none\r\n"
    " header.from=wlt.example.gov.cn;compauth=pass reason=100"
)
# NOTE: the Coremail shape is assumed from other milter output, not taken from a captured Coremail message.
COREMAIL_STYLE = (
    f"{SERVER};\r\n\tdkim=pass (1024-bit key; unprotected) header.d=wlt.example.gov.cn\r\n"
    '\theader.i=@wlt.example.gov.cn header.b="kX9+Qp/2";\r\n'
    "\tspf=pass smtp.mailfrom=leader@wlt.example.gov.cn;\r\n"
    "\tdmarc=pass header.from=wlt.example.gov.cn"
)
# One field per milter, topmost first: OpenDMARC ran last, then OpenDKIM, then the SPF policy daemon.
MILTER_FIELDS = [
    f"{SERVER}; dmarc=pass (p=reject dis=none) header.from=wlt.example.gov.cn",
    f"{SERVER};\r\n\tdkim=pass (2048-bit key; unprotected) header.d=wlt.example.gov.cn\r\n"
    "\theader.i=@wlt.example.gov.cn header.a=rsa-sha256 header.s=default header.b=AbCd1234",
    f"{SERVER}; spf=pass (mailfrom) smtp.mailfrom=wlt.example.gov.cn (client-ip=192.0.2.10;"
    " helo=out.wlt.example.gov.cn; envelope-from=leader@wlt.example.gov.cn)",
]


def check(headers: list[str], required: tuple[str, ...] = ALL_METHODS, from_domain: str = FROM_DOMAIN) -> AuthVerdict:
    return check_authentication(headers, authserv_id=SERVER, required=required, from_domain=from_domain)


def method_names(parsed: AuthResults) -> list[str]:
    return [result.method for result in parsed.results]


# Parsing


def test_parse_gmail_style() -> None:
    parsed = parse_authentication_results(GMAIL_STYLE)

    assert parsed is not None
    assert parsed.authserv_id == "mx.google.com"
    assert parsed.version is None
    assert method_names(parsed) == ["dkim", "spf", "dmarc"]
    assert [result.result for result in parsed.results] == ["pass", "pass", "pass"]
    assert parsed.results[0].value_of("header.i") == "@wlt.example.gov.cn"
    assert parsed.results[0].value_of("header.b") == "Ab3+/xYz"
    assert parsed.results[1].value_of("smtp.mailfrom") == "leader@wlt.example.gov.cn"
    assert parsed.results[2].value_of("header.from") == "wlt.example.gov.cn"
    assert parsed.skipped == 0


def test_parse_office365_without_authserv_id() -> None:
    parsed = parse_authentication_results(OFFICE365_STYLE)

    assert parsed is not None
    assert parsed.authserv_id == ""
    assert method_names(parsed) == ["spf", "dkim", "dmarc", "compauth"]
    assert parsed.results[2].extras == (("action", "none"),)
    assert parsed.results[3].result == "pass"
    assert parsed.results[3].reason == "100"


def test_parse_coremail_style_semicolon_in_comment() -> None:
    parsed = parse_authentication_results(COREMAIL_STYLE)

    assert parsed is not None
    assert parsed.authserv_id == SERVER
    assert method_names(parsed) == ["dkim", "spf", "dmarc"]
    assert parsed.results[0].value_of("header.d") == "wlt.example.gov.cn"
    assert parsed.results[0].value_of("header.b") == "kX9+Qp/2"


def test_parse_full_property_list() -> None:
    parsed = parse_authentication_results(MILTER_FIELDS[1])

    assert parsed is not None
    assert parsed.results[0].properties == (
        ResultProperty("header", "d", "wlt.example.gov.cn"),
        ResultProperty("header", "i", "@wlt.example.gov.cn"),
        ResultProperty("header", "a", "rsa-sha256"),
        ResultProperty("header", "s", "default"),
        ResultProperty("header", "b", "AbCd1234"),
    )


def test_parse_none_as_only_result() -> None:
    parsed = parse_authentication_results(f"{SERVER} 1; none")

    assert parsed == AuthResults(authserv_id=SERVER, version=1, results=(), skipped=0)


def test_parse_none_with_comments() -> None:
    parsed = parse_authentication_results(f"(local) {SERVER} (v) ;\r\n (nothing to check) none (really)")

    assert parsed == AuthResults(authserv_id=SERVER, version=None, results=(), skipped=0)


def test_parse_method_version() -> None:
    parsed = parse_authentication_results(f"{SERVER}; dkim/1=pass header.d=a.example; spf / 2 = fail")

    assert parsed is not None
    assert parsed.results[0] == MethodResult(
        method="dkim", result="pass", version=1, properties=(ResultProperty("header", "d", "a.example"),)
    )
    assert parsed.results[1].method == "spf"
    assert parsed.results[1].version == 2
    assert parsed.results[1].result == "fail"


def test_parse_is_case_insensitive() -> None:
    parsed = parse_authentication_results("MAIL.Example.GOV.cn; DKIM=Pass Header.D=WLT.example.gov.cn")

    assert parsed is not None
    assert parsed.authserv_id == "MAIL.Example.GOV.cn"
    assert parsed.results[0].method == "dkim"
    assert parsed.results[0].result == "pass"
    assert parsed.results[0].value_of("HEADER.D") == "WLT.example.gov.cn"


def test_parse_unknown_methods_and_results() -> None:
    parsed = parse_authentication_results(
        f"{SERVER}; x-hmca=pass header.id=a@b.example; bimi=skipped; dkim-atps=neutral;"
        " iprev=pass policy.iprev=192.0.2.1; arc=pass (i=1 spf=pass); spf=hardfail"
    )

    assert parsed is not None
    assert method_names(parsed) == ["x-hmca", "bimi", "dkim-atps", "iprev", "arc", "spf"]
    assert parsed.results[3].value_of("policy.iprev") == "192.0.2.1"
    assert parsed.results[5].result == "hardfail"


def test_parse_nested_comments_and_cfws() -> None:
    value = (
        f"{SERVER} (outer (inner; dkim=pass) \\) still) ;\r\n"
        "  dkim (method) = (result) fail (why (nested)) header (p) . (q) d (r) = (s) wlt.example.gov.cn"
    )

    parsed = parse_authentication_results(value)

    assert parsed is not None
    assert parsed.authserv_id == SERVER
    assert len(parsed.results) == 1
    assert parsed.results[0].result == "fail"
    assert parsed.results[0].value_of("header.d") == "wlt.example.gov.cn"


def test_parse_quoted_strings() -> None:
    value = (
        '"mail.example.gov.cn"; spf=fail reason="SPF fail; \\"not\\" authorized" '
        'smtp.mailfrom="leader@wlt.example.gov.cn"; dkim=pass header.b="a;b (c)"'
    )

    parsed = parse_authentication_results(value)

    assert parsed is not None
    assert parsed.authserv_id == SERVER
    assert parsed.results[0].reason == 'SPF fail; "not" authorized'
    assert parsed.results[0].value_of("smtp.mailfrom") == "leader@wlt.example.gov.cn"
    assert parsed.results[1].value_of("header.b") == "a;b (c)"


def test_parse_trailing_and_empty_semicolons() -> None:
    parsed = parse_authentication_results(f"{SERVER};; dkim=pass;;\r\n ; spf=none;")

    assert parsed is not None
    assert method_names(parsed) == ["dkim", "spf"]
    assert parsed.skipped == 0


def test_parse_skips_bad_resinfo() -> None:
    value = f"{SERVER}; dkim=; =pass; spf=pass smtp.mailfrom=a.example junk; dmarc/x=pass; @@; dmarc=pass"

    parsed = parse_authentication_results(value)

    assert parsed is not None
    assert method_names(parsed) == ["dmarc"]
    assert parsed.skipped == 5


def test_parse_accepts_field_name_prefix() -> None:
    parsed = parse_authentication_results(f"Authentication-Results: {SERVER}; dkim=pass")

    assert parsed is not None
    assert parsed.authserv_id == SERVER


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   \r\n\t",
        "(only a comment)",
        "; dkim=pass",
        '""; dkim=pass',
        f"{SERVER} dkim=pass",
        f"{SERVER} 1 2; dkim=pass",
        f"{SERVER} {'9' * 5000}; dkim=pass",
    ],
)
def test_parse_unreadable_returns_none(value: str) -> None:
    assert parse_authentication_results(value) is None


def test_parse_huge_method_version_is_skipped() -> None:
    parsed = parse_authentication_results(f"{SERVER}; dkim/{'9' * 5000}=pass; spf=pass")

    assert parsed is not None
    assert method_names(parsed) == ["spf"]
    assert parsed.skipped == 1


def test_parse_unterminated_comment_and_quote() -> None:
    commented = parse_authentication_results(f"{SERVER}; dkim=pass header.d=a.example (open; spf=pass")
    quoted = parse_authentication_results(f'{SERVER}; dkim=pass header.b="open; spf=pass')

    assert commented is not None
    assert method_names(commented) == ["dkim"]
    assert quoted is not None
    assert method_names(quoted) == ["dkim"]
    assert quoted.results[0].value_of("header.b") == "open; spf=pass"


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_parse_never_raises_on_text(value: str) -> None:
    parsed = parse_authentication_results(value)

    assert parsed is None or isinstance(parsed, AuthResults)


_PIECES = st.sampled_from(
    [";", "=", "/", ".", "(", ")", '"', "\\", " ", "\r\n ", "dkim", "pass", "header.d", "none", "1", "@", "\x00"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=40), st.integers(min_value=0))
def test_parse_never_raises_on_damaged_header(pieces: list[str], cut: int) -> None:
    position = cut % (len(COREMAIL_STYLE) + 1)
    value = COREMAIL_STYLE[:position] + "".join(pieces) + COREMAIL_STYLE[position:]

    parsed = parse_authentication_results(value)

    assert parsed is None or all(result.method and result.result for result in parsed.results)


# Checking


@pytest.mark.parametrize("value", [COREMAIL_STYLE, GMAIL_STYLE.replace("mx.google.com", SERVER)])
def test_check_passes_aligned_results(value: str) -> None:
    verdict = check([value])

    assert verdict.passed
    assert verdict.reason == ""
    assert [method.method for method in verdict.methods] == list(ALL_METHODS)
    assert all(method.passed for method in verdict.methods)


def test_check_reads_one_field_per_milter() -> None:
    verdict = check(MILTER_FIELDS)

    assert verdict.passed
    assert verdict.reason == ""


def test_check_office365_has_no_own_result() -> None:
    verdict = check([OFFICE365_STYLE])

    assert not verdict.passed
    assert verdict.reason == f"没有本邮件服务器（{SERVER}）的认证结果"
    assert verdict.methods == ()


def test_check_accepts_compauth_style_with_own_id() -> None:
    verdict = check([f"{SERVER}; {OFFICE365_STYLE}"])

    assert verdict.passed


def test_check_authserv_id_is_case_insensitive() -> None:
    verdict = check([COREMAIL_STYLE.replace(SERVER, "Mail.EXAMPLE.gov.cn")])

    assert verdict.passed


def test_check_ignores_forged_field_above() -> None:
    forged = "mail.example.gov.cn.evil.example; dkim=pass header.d=wlt.example.gov.cn; spf=pass; dmarc=pass"
    genuine = (
        f"{SERVER}; dkim=fail header.d=wlt.example.gov.cn; spf=softfail; dmarc=fail header.from=wlt.example.gov.cn"
    )

    verdict = check([forged, genuine])

    assert not verdict.passed
    assert verdict.reason == (
        "邮件服务器的认证结果中 DKIM 未通过（fail）；"
        "邮件服务器的认证结果中 SPF 未通过（softfail）；"
        "邮件服务器的认证结果中 DMARC 未通过（fail）"
    )


def test_check_forged_own_id_below() -> None:
    genuine = f"{SERVER}; dkim=none; spf=pass smtp.mailfrom=wlt.example.gov.cn; dmarc=fail"
    forged = f"{SERVER}; dkim=pass header.d=wlt.example.gov.cn; dmarc=pass header.from=wlt.example.gov.cn"

    verdict = check([genuine, forged])

    assert not verdict.passed
    assert [method.passed for method in verdict.methods] == [False, True, False]
    assert verdict.methods[0].reason == "邮件服务器的认证结果中 DKIM 未通过（none）"
    assert verdict.methods[2].reason == "邮件服务器的认证结果中 DMARC 未通过（fail）"


def test_check_only_foreign_fields() -> None:
    verdict = check([GMAIL_STYLE, "relay.example.net; dkim=pass header.d=wlt.example.gov.cn"])

    assert not verdict.passed
    assert verdict.reason == f"没有本邮件服务器（{SERVER}）的认证结果"


def test_check_no_fields() -> None:
    verdict = check([])

    assert not verdict.passed
    assert verdict.reason == f"没有本邮件服务器（{SERVER}）的认证结果"


def test_check_ignores_results_inside_comments() -> None:
    value = f"{SERVER}; dkim=fail (dkim=pass header.d=wlt.example.gov.cn; spf=pass) header.d=wlt.example.gov.cn"

    verdict = check([value], required=("dkim", "spf"))

    assert not verdict.passed
    assert verdict.methods[0].reason == "邮件服务器的认证结果中 DKIM 未通过（fail）"
    assert verdict.methods[1].reason == "邮件服务器的认证结果中没有 SPF 结果"


def test_check_rejects_misaligned_dkim() -> None:
    value = f"{SERVER}; dkim=pass header.d=bulkmail.example.com header.i=@bulkmail.example.com"

    verdict = check([value], required=("dkim",))

    assert not verdict.passed
    assert verdict.reason == (
        "邮件服务器的认证结果中 DKIM 签名域（bulkmail.example.com）与发件人域名（wlt.example.gov.cn）不一致"
    )


def test_check_rejects_lookalike_suffix() -> None:
    value = f"{SERVER}; dkim=pass header.d=evilwlt.example.gov.cn"

    verdict = check([value], required=("dkim",))

    assert not verdict.passed


@pytest.mark.parametrize(
    "signer",
    [
        "header.d=wlt.example.gov.cn",
        "header.d=WLT.Example.GOV.CN.",
        "header.d=mail.wlt.example.gov.cn",
        "header.d=example.gov.cn",
        "header.i=leader@wlt.example.gov.cn",
        "header.i=@news.wlt.example.gov.cn",
    ],
)
def test_check_accepts_relaxed_dkim_alignment(signer: str) -> None:
    verdict = check([f"{SERVER}; dkim=pass {signer}"], required=("dkim",))

    assert verdict.passed


def test_check_refuses_single_label_parent() -> None:
    verdict = check([f"{SERVER}; dkim=pass header.d=cn"], required=("dkim",))

    assert not verdict.passed


def test_check_one_aligned_signature_is_enough() -> None:
    value = (
        f"{SERVER}; dkim=pass header.d=esp.example.net; dkim=fail header.d=x.example;"
        " dkim=pass header.d=wlt.example.gov.cn"
    )

    verdict = check([value], required=("dkim",))

    assert verdict.passed


def test_check_dkim_pass_without_signer() -> None:
    verdict = check([f"{SERVER}; dkim=pass header.s=default"], required=("dkim",))

    assert not verdict.passed
    assert verdict.reason == "邮件服务器的认证结果中 DKIM 已通过，但没有注明签名域"


def test_check_spf_alignment() -> None:
    aligned = check([f"{SERVER}; spf=pass smtp.mailfrom=bounce@mail.wlt.example.gov.cn"], required=("spf",))
    without_mailfrom = check([f"{SERVER}; spf=pass smtp.helo=out.example.net"], required=("spf",))
    misaligned = check([f"{SERVER}; spf=pass smtp.mailfrom=bounce@esp.example.net"], required=("spf",))
    null_sender = check([f"{SERVER}; spf=pass smtp.mailfrom=<>"], required=("spf",))

    assert aligned.passed
    assert without_mailfrom.passed
    assert not misaligned.passed
    assert misaligned.reason == (
        "邮件服务器的认证结果中 SPF 检查的信封发件人（bounce@esp.example.net）与发件人域名（wlt.example.gov.cn）不一致"
    )
    assert not null_sender.passed


def test_check_dmarc_header_from_other_domain() -> None:
    verdict = check([f"{SERVER}; dmarc=pass (p=none) header.from=other.example.com"], required=("dmarc",))

    assert not verdict.passed
    assert verdict.reason == (
        "邮件服务器的认证结果中 DMARC 检查的发件人域名（other.example.com）"
        "与本邮件的发件人域名（wlt.example.gov.cn）不一致"
    )


def test_check_dmarc_header_from_must_match_exactly() -> None:
    verdict = check([f"{SERVER}; dmarc=pass header.from=example.gov.cn"], required=("dmarc",))

    assert not verdict.passed


def test_check_dmarc_pass_without_header_from() -> None:
    verdict = check([f"{SERVER}; dmarc=pass"], required=("dmarc",))

    assert verdict.passed


def test_check_missing_methods() -> None:
    verdict = check([f"{SERVER}; spf=pass smtp.mailfrom=wlt.example.gov.cn"])

    assert not verdict.passed
    assert [method.passed for method in verdict.methods] == [False, True, False]
    assert verdict.reason == "邮件服务器的认证结果中没有 DKIM 结果；邮件服务器的认证结果中没有 DMARC 结果"


def test_check_none_result_field() -> None:
    verdict = check([f"{SERVER}; none"], required=("dmarc",))

    assert not verdict.passed
    assert verdict.reason == "邮件服务器的认证结果中没有 DMARC 结果"


def test_check_lists_distinct_outcomes() -> None:
    verdict = check([f"{SERVER}; dkim=fail; dkim=temperror; dkim=fail"], required=("dkim",))

    assert verdict.reason == "邮件服务器的认证结果中 DKIM 未通过（fail、temperror）"


def test_check_only_required_methods_count() -> None:
    value = f"{SERVER}; dkim=fail; spf=fail; dmarc=pass header.from=wlt.example.gov.cn"

    verdict = check([value], required=("DMARC",))

    assert verdict.passed
    assert [method.method for method in verdict.methods] == ["dmarc"]


def test_check_accepts_address_and_idn_from_domain() -> None:
    as_address = check([COREMAIL_STYLE], from_domain="Leader@WLT.example.gov.cn")
    idn = check(
        [f"{SERVER}; dkim=pass header.d=xn--zfr164btmqbgt.example.cn; dmarc=pass header.from=政务邮箱.example.cn"],
        required=("dkim", "dmarc"),
        from_domain="政务邮箱.example.cn",
    )

    assert as_address.passed
    assert idn.passed


def test_check_reason_shows_unicode_from_domain() -> None:
    verdict = check(
        [f"{SERVER}; dkim=pass header.d=other.example.cn"], required=("dkim",), from_domain="政务邮箱.example.cn"
    )

    assert (
        verdict.reason
        == "邮件服务器的认证结果中 DKIM 签名域（other.example.cn）与发件人域名（政务邮箱.example.cn）不一致"
    )


@pytest.mark.parametrize("from_domain", ["", "   ", "leader@", "a..b", "bad domain.example", "x" * 300])
def test_check_invalid_from_domain(from_domain: str) -> None:
    verdict = check([COREMAIL_STYLE], from_domain=from_domain)

    assert not verdict.passed
    assert "无法核对认证结果" in verdict.reason


def test_check_reason_hides_control_characters() -> None:
    value = f'{SERVER}; dkim=pass header.d="evil\u202e.example\r\n{"x" * 200}"'

    verdict = check([value], required=("dkim",))

    assert not verdict.passed
    assert "\u202e" not in verdict.reason
    assert "\r" not in verdict.reason
    assert "…" in verdict.reason
    assert len(verdict.reason) < 160


@pytest.mark.parametrize(
    ("authserv_id", "required"),
    [("", ("dkim",)), ("  ", ("dkim",)), (SERVER, ()), (SERVER, ("dkim", "arc")), (SERVER, "dkim")],
)
def test_check_rejects_bad_configuration(authserv_id: str, required: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        check_authentication([COREMAIL_STYLE], authserv_id=authserv_id, required=required, from_domain=FROM_DOMAIN)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.text(), st.sampled_from([COREMAIL_STYLE, GMAIL_STYLE, OFFICE365_STYLE])), max_size=4),
    st.text(),
)
def test_check_never_raises_on_hostile_input(headers: list[str], from_domain: str) -> None:
    verdict = check(headers, from_domain=from_domain)

    assert verdict.passed == (verdict.reason == "")
