"""Every text the pages show has both languages: each ``t("...")`` of the templates and of
the web's Python, each message of a URL (``?m=``, ``?e=``) and each value a page translates
(service names, statuses, reasons, roles, form fields) is in :data:`scp.web.ui.i18n.ZH`, and
one that is not English as written (``notify:sms``, ``missed-call``) is in ``EN`` too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scp.flows.reports import REASONS
from scp.flows.selfservice import SMS_BUCKETS
from scp.service.provisioning import (
    CALL_CATEGORIES,
    NOTIFY_MODES,
    SERVICES,
    STATUSES,
    VOICEMAIL_NOTIFY,
)
from scp.service.webauth import ROLES
from scp.web.ui.forms import FORM_FIELDS
from scp.web.ui.i18n import EN, FLASH_ERR, FLASH_OK, ZH, translator

WEB = Path(__file__).resolve().parents[2] / "scp" / "web"

# t("text") or t('text') with a literal whole argument (a literal joined to a variable,
# t("notify:" ~ m), is a family of keys: KEY_FAMILIES below)
LITERAL = re.compile(r"""\bt\(\s*(?:"((?:[^"\\]|\\.)*)"|'([^'\\]*)')\s*[,)]""")
JOINED = re.compile(r"""\bt\(\s*["']([^"']*)["']\s*~\s*(\w+)\s*\)""")
KEY_FAMILIES = {"notify:": NOTIFY_MODES, "vmnotify:": VOICEMAIL_NOTIFY}
CDR_RECORD_TYPES = ("call", "sms", "voicemail", "fee")  # migration 0001's CHECK

VALUES = {
    *FLASH_OK.values(),
    *FLASH_ERR.values(),
    *FORM_FIELDS,
    *SERVICES,
    *STATUSES,
    *CALL_CATEGORIES,
    *REASONS,
    *SMS_BUCKETS,
    *ROLES,
    *CDR_RECORD_TYPES,
}


def sources() -> list[Path]:
    """The templates and the web's code (the table itself aside: its docstring shows t())."""
    return sorted(p for p in [*WEB.rglob("*.html"), *WEB.rglob("*.py")] if p.name != "i18n.py")


def literal_keys(text: str) -> set[str]:
    return {(m.group(1) or m.group(2) or "").replace('\\"', '"') for m in LITERAL.finditer(text)}


def joined_keys(text: str) -> set[str]:
    keys = set()
    for prefix, _ in JOINED.findall(text):
        assert prefix in KEY_FAMILIES, f"t({prefix!r} ~ ...): a key family the test must know"
        keys |= {prefix + v for v in KEY_FAMILIES[prefix]}
    return keys


def english_as_written(key: str) -> bool:
    """Text a reader can take as is, not an identifier like notify:sms or forward_to."""
    return " " in key or not re.search(r"[:_-]", key)


def missing(keys: set[str]) -> list[str]:
    return sorted(
        f"{k!r}: no {'zh' if k not in ZH else 'en'}"
        for k in keys
        if k not in ZH or not (english_as_written(k) or k in EN)
    )


def all_keys() -> dict[str, set[str]]:
    found = {}
    for path in sources():
        text = path.read_text(encoding="utf-8")
        keys = literal_keys(text) | joined_keys(text)
        if keys:
            found[str(path.relative_to(WEB))] = keys
    return found


def test_the_scan_finds_the_pages_texts() -> None:
    """The scan reads what the templates write (so an empty scan cannot pass unnoticed)."""
    found = all_keys()
    assert "Log out" in found["ui/templates/base.html"]
    assert "Missed calls by reason" in found["console/__init__.py"]
    assert "notify:digest" in found["ui/templates/_macros.html"]
    assert sum(len(k) for k in found.values()) > 150


@pytest.mark.parametrize("where", sorted(all_keys()))
def test_every_text_of_a_page_has_both_languages(where: str) -> None:
    assert missing(all_keys()[where]) == []


def test_every_value_a_page_translates_has_both_languages() -> None:
    assert missing(VALUES) == []


def test_a_missing_translation_is_found() -> None:
    assert missing({"A text nobody translated"}) == ["'A text nobody translated': no zh"]
    assert missing({"notify:carrier-pigeon"}) == ["'notify:carrier-pigeon': no zh"]
    ZH["x:y"] = "某"
    try:
        assert missing({"x:y"}) == ["'x:y': no en"]
    finally:
        del ZH["x:y"]
    assert literal_keys("""{{ t("One") }} {{ t('Two', n=1) }} {{ t(var) }}""") == {"One", "Two"}


def test_the_translator_uses_them() -> None:
    assert translator("zh")("Missed calls") == ZH["Missed calls"]
    assert translator("en")("notify:sms") == EN["notify:sms"]
    assert translator("en")("Missed calls") == "Missed calls"
