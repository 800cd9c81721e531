"""The instructor's tablet app shell (HTML, JS, CSS, manifest, icons), its texts in
every language (``i18n/<lang>.json``: the catalogs' ``script_catalog`` and plural rule)
and its service worker, which caches all of them so the app opens without a network."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from cloud_bridge.driving_school.access import BASE
from contracts.i18n import LANGUAGES, negotiate, plural_rule, script_catalog

APP = f"{BASE}/app"
STATIC = Path(__file__).parent / "static"
SHELL = {  # file name -> media type; all of these are cached by the service worker
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "manifest.webmanifest": "application/manifest+json",
    "icon-192.png": "image/png",
    "icon-512.png": "image/png",
}

router = APIRouter(prefix=APP)


def catalog_json(lang: str) -> bytes:
    """The app's texts in ``lang``: {"lang", "plural" (a C expression of n), "messages"}."""
    return json.dumps({"lang": lang, "plural": plural_rule(lang),
                       "messages": script_catalog(lang)}, ensure_ascii=False,
                      sort_keys=True).encode()


def shell_version() -> str:
    """Hash of the shell files and texts: a changed app gives a changed sw.js, which the
    browser installs, which caches the new shell under a new name."""
    h = hashlib.sha256()
    for name in sorted(SHELL):
        h.update((STATIC / name).read_bytes())
    for lang in LANGUAGES:
        h.update(catalog_json(lang))
    return h.hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Shell:
    files: dict[str, bytes]
    worker: str  # sw.js with the shell's version
    catalogs: dict[str, bytes]  # language -> catalog_json


@cache
def load_shell() -> Shell:
    """The shell's files, read once (``driving_school_router`` reads them at mount, so a
    broken install fails at start, not on a tablet)."""
    catalogs = {lang: catalog_json(lang) for lang in LANGUAGES}
    worker = (STATIC / "sw.js").read_text().replace("__SHELL_VERSION__", shell_version()) \
        .replace('"__CATALOGS__"', ", ".join(f'"i18n/{lang}.json"' for lang in LANGUAGES))
    return Shell({name: (STATIC / name).read_bytes() for name in SHELL}, worker, catalogs)


def static(name: str) -> Response:
    # no-cache: the browser revalidates; offline, the service worker answers instead
    return Response(load_shell().files[name], media_type=SHELL[name],
                    headers={"Cache-Control": "no-cache"})


@router.get("/")
def index() -> Response:
    return static("index.html")


@router.get("/sw.js")
def service_worker() -> Response:
    return Response(load_shell().worker, media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


@router.get("/i18n/{lang}.json")
def catalog(lang: str) -> Response:
    chosen = negotiate(lang)
    if chosen != lang:
        raise HTTPException(404, "not found")
    return Response(load_shell().catalogs[chosen], media_type="application/json",
                    headers={"Cache-Control": "no-cache"})


@router.get("/{name}")
def asset(name: str) -> Response:
    if name not in SHELL:
        raise HTTPException(404, "not found")
    return static(name)
