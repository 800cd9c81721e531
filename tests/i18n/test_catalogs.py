"""Every string a person reads is in the catalogs: marked strings have a Slovenian
translation, and no served template, page or page script holds literal text."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.i18n import catalog_files, format_money, parse_day, translations, use_language
from contracts.reasons import Reason, display_text, explain
from tests.i18n.catalog_check import (
    ROOT,
    literal_text,
    page_scripts,
    script_literals,
    served_pages,
    untranslated,
)


def test_every_marked_string_has_a_slovenian_translation() -> None:
    missing = untranslated()
    listing = "\n".join(f"{where}:{line}: {msgid!r}" for msgid, where, line in missing[:60])
    assert not missing, f"{len(missing)} strings without Slovenian text:\n{listing}"


@pytest.mark.parametrize("path", served_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_literal_text_in_served_pages(path: Path) -> None:
    assert literal_text(path) == [], "wrap these in _() / {% trans %} or t() in scripts"


@pytest.mark.parametrize("path", page_scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_literal_text_in_page_scripts(path: Path) -> None:
    assert script_literals(path.read_text("utf-8")) == []


def test_the_checks_can_fail() -> None:
    """The scanners find literal text where it is (they are not vacuous)."""
    assert script_literals('el.textContent = "Brez povezave"; t("Saved")') == ["Brez povezave"]
    assert script_literals('msg = "Lesson saved on the server"') != []
    assert script_literals('fetch("/api/x"); el.className = "error"') == []


def test_reason_codes_have_texts_in_both_languages() -> None:
    for reason in Reason:
        with use_language("en"):
            english = (display_text(reason), explain(reason))
        with use_language("sl"):
            slovenian = (display_text(reason), explain(reason))
        assert all(english) and all(slovenian)
        assert english != slovenian, reason


def test_catalogs_parse_and_format_for_sl_si() -> None:
    assert catalog_files("sl")
    assert translations("sl").gettext("Welcome") == "Dobrodošli"
    with use_language("sl"):
        assert format_money(1250) == "12,50\xa0€"
        assert parse_day("3. 12. 2026").isoformat() == "2026-12-03"
        assert parse_day("2026-12-03").isoformat() == "2026-12-03"
        with pytest.raises(ValueError, match=r"3\. 12\. 2026"):
            parse_day("12/03/2026")
        with pytest.raises(ValueError):
            parse_day("31. 2. 2026")
    with use_language("en"):
        assert format_money(1250) == "€12.50"


def test_a_text_reads_the_same_in_every_domain() -> None:
    """Domains are merged into one catalog: a msgid in two domains must not have two
    Slovenian texts (which one wins would depend on file order)."""
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in catalog_files("sl"):
        with path.open("rb") as fh:
            for message in read_po(fh, locale="sl"):
                if not message.id:
                    continue
                key, text = str(message.id), str(message.string)
                if key in seen and seen[key][1] != text:
                    clashes.append(f"{key!r}: {seen[key][0]} {seen[key][1]!r}, "
                                   f"{path.stem} {text!r}")
                seen.setdefault(key, (path.stem, text))
    assert not clashes, "\n".join(clashes)
