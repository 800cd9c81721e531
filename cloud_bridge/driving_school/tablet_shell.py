"""The instructor's tablet app shell (HTML, JS, CSS, manifest, icons) and its service
worker, which caches the shell so the app opens without a network."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from cloud_bridge.driving_school.access import BASE

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


def shell_version() -> str:
    """Hash of the shell files: a changed app gives a changed sw.js, which the browser
    installs, which caches the new shell under a new name."""
    h = hashlib.sha256()
    for name in sorted(SHELL):
        h.update((STATIC / name).read_bytes())
    return h.hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Shell:
    files: dict[str, bytes]
    worker: str  # sw.js with the shell's version


@cache
def load_shell() -> Shell:
    """The shell's files, read once (``driving_school_router`` reads them at mount, so a
    broken install fails at start, not on a tablet)."""
    return Shell({name: (STATIC / name).read_bytes() for name in SHELL},
                 (STATIC / "sw.js").read_text().replace("__SHELL_VERSION__",
                                                        shell_version()))


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


@router.get("/{name}")
def asset(name: str) -> Response:
    if name not in SHELL:
        raise HTTPException(404, "not found")
    return static(name)
