"""HTML bodies converted to text."""

from __future__ import annotations

from parsers.html import html_to_text


def test_paragraphs_and_breaks() -> None:
    html = "<p class=MsoNormal>第一段</p><p>第二段<br>续行</p>"
    assert html_to_text(html) == "第一段\n第二段\n续行"


def test_scripts_styles_and_comments_dropped() -> None:
    html = (
        "<html><head><style>p {color:red}</style><script>var x;</script></head>"
        "<body><!-- c -->正文</body></html>"
    )
    assert html_to_text(html) == "正文"


def test_entities_and_nbsp() -> None:
    assert html_to_text("<div>A&amp;B&nbsp;C&lt;D</div>") == "A&B C<D"


def test_empty_paragraph_keeps_blank_line() -> None:
    assert html_to_text("<p>一</p><p>&nbsp;</p><p>二</p>") == "一\n\n二"


def test_table_cells_tab_separated() -> None:
    assert html_to_text("<table><tr><td>日期</td><td>活动</td></tr></table>") == "日期\t活动"


def test_plain_string_without_tags() -> None:
    assert html_to_text("just text") == "just text"


def test_cited_blockquote_dropped_on_request() -> None:
    html = (
        '<div>回复正文</div><blockquote type="cite"><p>原邮件</p></blockquote>'
        '<div class="gmail_quote">旧</div>'
    )
    assert html_to_text(html, drop_quotes=True) == "回复正文"
    assert html_to_text(html) == "回复正文\n原邮件\n旧"
