"""Payloads the agent receives (docs/protocol.md), validated at the edge with pydantic."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_COMMAND_BYTES = 64 * 1024
MAX_ACK_BYTES = 1024


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ack(_Msg):
    v: Literal[1]
    acked_seq: Annotated[int, Field(ge=0)]


class Command(_Msg):
    v: Literal[1]
    request_id: Annotated[str, Field(min_length=1, max_length=64)]
    args: dict[str, Any] = {}


class ChangeBatch(_Msg):
    v: Literal[1]
    tenant: str
    kind: Literal["changes"]
    from_version: Annotated[int, Field(ge=0)]
    to_version: Annotated[int, Field(ge=1)]
    # validated record by record by agent.store.membership.parse_changes
    changes: list[dict[str, Any]]


class SnapshotChunk(_Msg):
    v: Literal[1]
    tenant: str
    kind: Literal["snapshot"]
    snapshot_id: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[int, Field(ge=0)]
    chunk: Annotated[int, Field(ge=0)]
    chunks: Annotated[int, Field(ge=1, le=100_000)]
    changes: list[dict[str, Any]]


class OpenArgs(_Msg):
    gate: Annotated[str, Field(min_length=1, max_length=64)]
    direction: Literal["in", "out"] = "in"
