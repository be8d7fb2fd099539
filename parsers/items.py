"""Information items (政务信息) read from a parsed message: title, category, body and review lines.

Every attached document that reads as an item (a title-like first paragraph followed by a body)
is one item. When no document does, the first document with any text is the item, and a mail
without documents carries its item in the mail text.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass

from parsers.documents import DOCX_ERRORS, WARNING_DOC, BlockKind, read_docx_blocks
from parsers.model import Attachment, DocumentKind, ItemDraft, ItemSource, ParsedMessage
from parsers.subjects import classify_category, strip_subject

WARNING_NO_ITEM_TEXT = "邮件正文只有说明文字，附件中也未读出信息正文，已按邮件标题登记，请办公室查看附件。"

logger = logging.getLogger(__name__)

_WHITESPACE = " \t\u3000\xa0\r\n"
_REVIEW_LINE = re.compile(r"^[（(【\[]?\s*(审核|审稿|签发)")
_CONTACT_LINE = re.compile(r"^[（(【\[]?\s*联系人")
_NAME = r"([\u4e00-\u9fa5·]{2,4}?)(?=[\s\u3000，,；;）)】\]、。]|签发|审核|联系|电话|$)"
_REVIEWER = re.compile(r"(?:审核|审稿)人?\s*[:：]?\s*" + _NAME)
_SIGNER = re.compile(r"签发人?\s*[:：]?\s*" + _NAME)
_CONTACT = re.compile(r"联系人\s*[:：]?\s*" + _NAME)
_PHONE = re.compile(r"(?:电话|手机|Tel)\s*[:：]?\s*([0-9][0-9\-－ ]{6,}[0-9])", re.I)
_GREETING = re.compile(r"^.{1,20}[:：]$")
_COVER_NOTE = re.compile(r"(请审阅|请审核|请查收|请审定|请予|如下|报上|报送|附件|见附件|谢谢)")
_SIGNATURE = re.compile(r"^(--\s*|发自我的.*|Sent from my .*|来自.*客户端)$")
_MAX_TITLE_CHARS = 80
_MAX_COVER_LETTER_CHARS = 300
# Fixed-layout documents whose text the parsers extract line by line.
_TEXT_LAYOUT_KINDS = frozenset({DocumentKind.PDF, DocumentKind.OFD})


@dataclass(frozen=True)
class _Lines:
    """Paragraphs of an item source, with the indexes of table paragraphs (excluded from the body)."""

    paragraphs: list[str]
    tables: frozenset[int] = frozenset()


def extract_items(msg: ParsedMessage) -> list[ItemDraft]:
    """Return the items a message carries, in attachment order.

    None for auto-replies, bounces and list mail. Otherwise one item per attached document that
    reads as an item; else the first .docx, .txt or .doc with any text (e.g. an unreadable .doc,
    which gets a warning); else the item in the mail text. A document attached twice (same sha256) counts once.
    """
    if msg.is_auto_reply or msg.is_bounce or msg.is_list:
        return []
    documents: list[ItemDraft] = []
    seen: set[str] = set()
    for index, attachment in enumerate(msg.attachments):
        if attachment.sha256 in seen:
            continue
        item = _item_from_attachment(msg, index, attachment)
        if item is None:
            continue
        seen.add(attachment.sha256)
        documents.append(item)
    items = [draft for draft in documents if looks_like_item(draft)]
    if items:
        return items
    # A PDF or OFD that does not read as an item is more often a scan or an enclosure than the
    # item, so it never replaces the mail text as the item.
    fallback = [
        draft for draft in documents if msg.attachments[draft.attachment_index or 0].kind not in _TEXT_LAYOUT_KINDS
    ]
    if fallback:
        return fallback[:1]
    return [_item_from_body(msg)]


def looks_like_item(draft: ItemDraft) -> bool:
    """Tell whether a document draft reads as an information item and not as a cover letter or table.

    An item has a title of at most 80 characters that is not a salutation ("XX局：") and a body.
    A body that opens with a salutation and stays under 300 characters is a cover letter (报送函).
    """
    title = draft.title.strip(_WHITESPACE)
    if not title or len(title) > _MAX_TITLE_CHARS or _GREETING.match(title):
        return False
    if not draft.body_text.strip(_WHITESPACE):
        return False
    first_paragraph = draft.body_text.split("\n", 1)[0].strip(_WHITESPACE)
    return not (_GREETING.match(first_paragraph) and draft.body_chars < _MAX_COVER_LETTER_CHARS)


def _is_review_line(line: str) -> bool:
    return bool(_REVIEW_LINE.match(line.strip(_WHITESPACE)))


def _is_contact_line(line: str) -> bool:
    return bool(_CONTACT_LINE.match(line.strip(_WHITESPACE)))


def _item_from_attachment(msg: ParsedMessage, index: int, attachment: Attachment) -> ItemDraft | None:
    name = attachment.filename.lower()
    if attachment.kind is DocumentKind.DOCX:
        try:
            blocks = read_docx_blocks(attachment.data)
        except DOCX_ERRORS:
            return None
        paragraphs = [block.text for block in blocks]
        tables = frozenset(i for i, block in enumerate(blocks) if block.kind is BlockKind.TABLE)
        if not any(text.strip() for text in paragraphs):
            return None
        container = msg.attachments[attachment.container_index] if attachment.container_index is not None else None
        if container is not None and container.kind is DocumentKind.MESSAGE:
            source = ItemSource.RFC822_DOCX
        elif name.endswith((".doc", ".wps")):
            source = ItemSource.DOC
        else:
            source = ItemSource.DOCX
        return _build_item(msg, _Lines(paragraphs, tables), source, index)
    is_text_file = name.endswith(".txt") or attachment.content_type == "text/plain"
    if attachment.kind is DocumentKind.TXT and attachment.text and is_text_file:
        paragraphs = attachment.text.split("\n")
        return _build_item(msg, _Lines(paragraphs), ItemSource.TXT, index)
    if attachment.kind in _TEXT_LAYOUT_KINDS and attachment.text and attachment.text.strip(_WHITESPACE):
        source = ItemSource.PDF if attachment.kind is DocumentKind.PDF else ItemSource.OFD
        return _build_item(msg, _Lines(attachment.text.split("\n")), source, index)
    if attachment.kind is DocumentKind.DOC and attachment.text and attachment.text.strip(_WHITESPACE):
        # A legacy .doc that the daemon's converter turned into text reads like any document.
        return _build_item(msg, _Lines(attachment.text.split("\n")), ItemSource.DOC, index)
    if attachment.kind is DocumentKind.DOC:
        return ItemDraft(
            title=strip_subject(msg.subject) or _strip_extension(attachment.filename),
            category=classify_category(msg.subject),
            body_text="",
            source=ItemSource.DOC,
            has_review_line=_find_review(msg.mail_text.split("\n"))[0],
            attachment_index=index,
            warnings=(attachment.warning or WARNING_DOC,),
        )
    return None


def _strip_extension(filename: str) -> str:
    return filename.rsplit(".", 1)[0] if "." in filename else filename


def _item_from_body(msg: ParsedMessage) -> ItemDraft:
    lines = msg.mail_text.split("\n")
    start = _find_body_title(lines, strip_subject(msg.subject))
    source = ItemSource.HTML_BODY if msg.mail_text_is_html else ItemSource.MAIL_BODY
    if start is None:
        # The mail text is only a greeting or a cover note ("见附件。") and no attachment could be read:
        # the subject names the item, and the office has to look at the attachment itself.
        draft = _build_item(msg, _Lines([]), source, None)
        return dataclasses.replace(draft, warnings=(*draft.warnings, WARNING_NO_ITEM_TEXT))
    return _build_item(msg, _Lines(lines[start:]), source, None)


def _find_body_title(lines: list[str], subject_title: str) -> int | None:
    """Return the index of the item's title line in the mail text, skipping greeting and cover note.

    Returns None when the text contains nothing but greetings and cover notes.
    """
    for index, line in enumerate(lines):
        if subject_title and line.strip(_WHITESPACE) == subject_title:
            return index
    only_cover = True
    for index, line in enumerate(lines):
        text = line.strip(_WHITESPACE)
        if not text:
            continue
        if _GREETING.match(text) or (_COVER_NOTE.search(text) and text.endswith(("。", "！", "!", "."))):
            continue
        only_cover = False
        if line[:1] in ("\u3000", " ", "\t") or len(text) > _MAX_TITLE_CHARS:
            continue
        return index
    return None if only_cover and any(line.strip(_WHITESPACE) for line in lines) else 0


def _build_item(
    msg: ParsedMessage,
    lines: _Lines,
    source: ItemSource,
    attachment_index: int | None,
) -> ItemDraft:
    title = ""
    body: list[str] = []
    in_body = source in (ItemSource.MAIL_BODY, ItemSource.HTML_BODY)
    for position, paragraph in enumerate(lines.paragraphs):
        text = paragraph.strip(_WHITESPACE)
        if not text or position in lines.tables:
            continue
        if not title:
            title = text
            continue
        if _is_review_line(text) or _is_contact_line(text):
            if in_body:
                break
            continue
        if in_body and _SIGNATURE.match(text):
            break
        body.append(text)

    document_lines = [] if in_body else lines.paragraphs
    document_place = {ItemSource.TXT: "txt", ItemSource.PDF: "pdf", ItemSource.OFD: "ofd"}.get(source, "docx")
    own_lines = msg.mail_text.split("\n")
    doc_review = _find_review(document_lines)
    own_review = _find_review(own_lines)
    has_review, reviewer, signer = doc_review if doc_review[0] else own_review
    review_places = [place for place, found in ((document_place, doc_review[0]), ("body", own_review[0])) if found]
    doc_contact = _find_contact(document_lines)
    own_contact = _find_contact(own_lines)
    has_contact, contact, phone = doc_contact if doc_contact[0] else own_contact
    contact_place: str | None = None
    if doc_contact[0]:
        contact_place = document_place
    elif own_contact[0]:
        contact_place = "body"

    return ItemDraft(
        title=title or strip_subject(msg.subject),
        category=classify_category(msg.subject, title),
        body_text="\n".join(body),
        source=source,
        has_review_line=has_review,
        reviewer=reviewer,
        signer=signer,
        has_contact_line=has_contact,
        contact=contact,
        phone=phone,
        attachment_index=attachment_index,
        review_line_location="+".join(review_places) or None,
        contact_line_location=contact_place,
    )


def _find_review(lines: list[str]) -> tuple[bool, str | None, str | None]:
    """Return whether a 审核/签发 line exists, and the reviewer and signer names it gives."""
    for line in lines:
        text = line.strip(_WHITESPACE)
        if not _is_review_line(text):
            continue
        reviewer = _REVIEWER.search(text)
        signer = _SIGNER.search(text)
        return True, reviewer.group(1) if reviewer else None, signer.group(1) if signer else None
    return False, None, None


def _find_contact(lines: list[str]) -> tuple[bool, str | None, str | None]:
    """Return whether a 联系人 line exists, and the contact name and phone number on it."""
    for line in lines:
        text = line.strip(_WHITESPACE)
        if not _is_contact_line(text):
            continue
        contact = _CONTACT.search(text)
        phone = _PHONE.search(text)
        return True, contact.group(1) if contact else None, phone.group(1).strip() if phone else None
    return False, None, None
