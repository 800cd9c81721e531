#!/usr/bin/env python3
"""Add or update Slovenian translations in one domain's catalog.

    .venv/bin/python scripts/po_add.py web new.json

``new.json`` maps an English msgid to its Slovenian text; a plural is the key
"singular|plural" with a list of the four Slovenian forms (1, 2, 3-4, 5+). The catalog
is contracts/locale/sl/LC_MESSAGES/<domain>.po (created when new), written with Babel so
the file stays well-formed. ``python -m tests.i18n.catalog_check`` lists what is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

LOCALE = Path(__file__).resolve().parents[1] / "contracts" / "locale" / "sl" / "LC_MESSAGES"


def main(domain: str, source: str) -> int:
    path = LOCALE / f"{domain}.po"
    if path.exists():
        with path.open("rb") as fh:
            catalog = read_po(fh, locale="sl", domain=domain)
    else:
        catalog = Catalog(locale="sl", domain=domain, project="edge-suite", fuzzy=False)
    entries = json.loads(Path(source).read_text(encoding="utf-8"))
    for key, text in entries.items():
        msgid: str | tuple[str, str] = key
        if isinstance(text, list):
            singular, plural = key.split("|", 1)
            msgid, text = (singular, plural), tuple(text)
        found = catalog.get(singular if isinstance(msgid, tuple) else msgid)
        if found is not None:
            found.string = text  # Catalog.add keeps an existing entry's old text
        else:
            catalog.add(msgid, text)
    LOCALE.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, width=100, sort_output=True)
    print(f"{path}: {len(catalog)} messages")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
