"""What the i18n tests check, as functions a person can also run to see what is missing:
``python -m tests.i18n.catalog_check`` prints every marked string without a Slovenian
translation as .po entries, and every template or page script with literal text."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.extract import extract_from_dir

from contracts.i18n import script_catalog

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "contracts", "cloud_bridge", "drivers", "sync", "simulators")
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
# page scripts translate with t("...") and tn("one", "many", n) (catalog served as JSON)
SCRIPT_KEYWORDS = {"t": None, "tn": (1, 2)}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
SCRIPT_METHODS = [("**/static/**.js", "javascript"), ("**/static/**.html", "javascript")]
# words that are the same in every language here: names, units, standards
SAME_IN_EVERY_LANGUAGE = re.compile(
    r"^(?:[A-Z0-9][A-Z0-9./-]{0,7}|edge-suite|E-GYM|E-EDC|E-SV|3click|€|%|km|h|min|"
    r"Slovenščina|English|EMŠO|ID|x)$")
LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
JINJA = re.compile(r"{#.*?#}|{%.*?%}|{{.*?}}", re.S)


def marked_messages() -> Iterator[tuple[str, str, int]]:
    """(msgid, file, line) of every string marked for translation in the product."""
    for package in PACKAGES:
        for methods, keywords in ((METHODS, KEYWORDS), (SCRIPT_METHODS, SCRIPT_KEYWORDS)):
            for filename, lineno, message, _comments, _ctx in extract_from_dir(
                    ROOT / package, methods, keywords=keywords,
                    options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}):
                msgid = message[0] if isinstance(message, tuple) else message
                if msgid:
                    yield msgid, f"{package}/{filename}", lineno


_DATA_T = re.compile(r'data-t(?:-[a-z-]+)?="([^"]+)"')


def static_attribute_messages() -> Iterator[tuple[str, str, int]]:
    """Texts a static page names in ``data-t`` attributes (its script translates them)."""
    for page in served_pages():
        if "static" not in page.parts:
            continue
        for number, line in enumerate(page.read_text("utf-8").splitlines(), 1):
            for msgid in _DATA_T.findall(line):
                yield msgid, str(page.relative_to(ROOT)), number


def untranslated() -> list[tuple[str, str, int]]:
    catalog = script_catalog("sl")
    singulars = {key.split("|", 1)[0] for key in catalog if "|" in key}
    missing = []
    for msgid, where, line in [*marked_messages(), *static_attribute_messages()]:
        if catalog.get(msgid) or msgid in singulars:
            continue
        missing.append((msgid, where, line))
    return missing


def served_pages() -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.html")):
            if "templates" in path.parts or "static" in path.parts:
                found.append(path)
    return found


def page_scripts() -> list[Path]:
    return [p for package in PACKAGES for p in sorted((ROOT / package).rglob("static/*.js"))]


class _TextCollector(HTMLParser):
    """Text nodes and human attributes of a template with its Jinja parts removed."""

    HUMAN_ATTRS = ("placeholder", "title", "aria-label", "alt")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        values = dict(attrs)
        for name in self.HUMAN_ATTRS:
            if values.get(name):
                self._check(str(values[name]))
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self._check(str(values["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._check(data)

    def _check(self, text: str) -> None:
        if '="' in text:  # attributes a macro writes into a tag (_form.html)
            return
        for word in re.split(r"[\s·:()\[\],;|/—–]+", text):
            word = word.strip(".!?'\"«»„“*")
            if word and LETTER.search(word) and not SAME_IN_EVERY_LANGUAGE.match(word):
                self.found.append(text.strip())
                return


def literal_text(path: Path) -> list[str]:
    """Literal human text in a template or page outside the gettext calls."""
    source = JINJA.sub(" ", path.read_text(encoding="utf-8"))
    collector = _TextCollector()
    collector.feed(source)
    return collector.found + script_literals(_inline_scripts(path))


def _inline_scripts(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return "\n".join(re.findall(r"<script[^>]*>(.*?)</script>", text, re.S))


_HUMAN_STRING = re.compile(r"[^\W\d_]{2,}[^\n]*\s[^\W\d_]{2,}|[čšžČŠŽ]|^[A-ZČŠŽ][a-zčšž]{3,}$")
_CLASS_LIST = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*(?:\s+[a-z0-9]+-[a-z0-9-]+)+$")
_TRANSLATING_CALLS = {"t", "tn", "_", "gettext"}


# A hand-written scan, not Babel's JavaScript lexer: Babel keeps its lexer private, and
# this needs only string literals and the call they are passed to.
_JS_COMMENT = re.compile(r"/\*.*?\*/|(?<![:\\\"'])//[^\n]*", re.S)
_JS_STRING = re.compile(r"(\w*)\s*(\(?)\s*([\"'`])((?:\\.|(?!\3).)*?)\3", re.S)


def script_literals(source: str) -> list[str]:
    """Strings in a script that read like text for a person and are not the argument of
    a translating call (``t("...")``)."""
    found = []
    previous_end, previous_was_tn = -1, False
    code = _JS_COMMENT.sub(" ", source)
    for match in _JS_STRING.finditer(code):
        callee, paren, _quote, value = match.groups()
        # the plural form: the string right after tn("one", ...
        plural_arg = previous_was_tn and code[previous_end:match.start()].strip() == ","
        previous_end, previous_was_tn = match.end(), bool(paren) and callee == "tn"
        if (paren and callee in _TRANSLATING_CALLS) or plural_arg:
            continue
        if value == "use strict" or _CLASS_LIST.match(value):
            continue
        if _HUMAN_STRING.search(value) and "<" not in value and "${" not in value \
                and not value.startswith(("/", "#", ".", "application/", "text/")):
            found.append(value)
    return found


def main() -> int:
    missing = untranslated()
    for msgid, where, line in missing:
        escaped = msgid.replace("\\", "\\\\").replace('"', '\\"')
        print(f'#: {where}:{line}\nmsgid "{escaped}"\nmsgstr ""\n')
    literal = {str(p.relative_to(ROOT)): literal_text(p) for p in served_pages()}
    for path in page_scripts():
        literal[str(path.relative_to(ROOT))] = script_literals(path.read_text("utf-8"))
    for path, texts in literal.items():
        for text in texts:
            print(f"# literal text in {path}: {text!r}", file=sys.stderr)
    return 1 if missing or any(literal.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
