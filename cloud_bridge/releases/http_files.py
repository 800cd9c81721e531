"""Serves the release folder over HTTPS: ``GET /releases/{channel}/{version}/{file}``.

The files are public: a device needs no credentials to download them, because it trusts
a release for its Ed25519 signature and hashes, not for where it came from; a wheel of
the agent holds no secret (keys live in each device's config). HTTPS (the bridge's
certificate, the CA in the device's ``[update] ca_file``) keeps the download private and
unmodified on the way, so a tampered file is not even fetched to be refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

_SAFE = re.compile(r"^[A-Za-z0-9_.+-]{1,200}$")


def release_files_app(folder: Path) -> FastAPI:
    app = FastAPI(title="edge-suite releases", docs_url=None, redoc_url=None,
                  openapi_url=None)
    root = folder.resolve()

    @app.get("/releases/{channel}/{version}/{name}")
    def release_file(channel: str, version: str, name: str) -> FileResponse:
        if not all(_SAFE.match(p) and not p.startswith(".") for p in (channel, version, name)):
            raise HTTPException(404)
        path = root / channel / version / name
        if not path.is_file():
            raise HTTPException(404)
        return FileResponse(path, media_type="application/octet-stream")

    return app
