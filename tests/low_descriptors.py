"""Descriptors 0..1024 taken for a test, so every socket opened meanwhile is numbered
above 1023 (where select() fails and poll() does not)."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def low_descriptors_taken(needs_limit: int) -> Iterator[None]:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needs_limit:
        pytest.skip(f"needs a descriptor limit above {needs_limit} (ulimit -n {soft})")
    held: list[int] = []
    while not held or held[-1] < 1024:
        held.append(os.open(os.devnull, os.O_RDONLY))
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
