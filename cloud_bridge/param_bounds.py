"""Bounds of the numbers the bridge accepts in URL paths, query strings and bodies.

A number the database cannot hold must be refused as bad input (422) before it reaches
SQL: past these bounds SQLite raises OverflowError and PostgreSQL "integer/bigint out of
range", which used to surface as HTTP 500. Each route declares its numbers with these
types, so the bound is also in the OpenAPI document (``maximum``) for clients and fuzzers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

# BigInteger columns (SQLite INTEGER, PostgreSQL bigint): seq, versions, ms times
MAX_BIGINT = 2**63 - 1
# Integer columns (PostgreSQL integer / serial): autoincrement row ids
MAX_ROW_ID = 2**31 - 1

# an event's sequence number on its device (seqs start at 1)
SeqPath = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="event seq on its device")]
# "after this seq" cursors; 0 = from the start
SeqAfterQuery = Annotated[int, Query(ge=0, le=MAX_BIGINT,
                                     description="events with seq above this")]
# autoincrement ids of rows (absences, users, candidates, courses, vehicles ...)
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowIdField = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
BigIntField = Annotated[int, Field(ge=0, le=MAX_BIGINT)]
# a millisecond timestamp cursor (received_at of the events table)
MsAfterQuery = Annotated[int, Query(ge=0, le=MAX_BIGINT)]
