"""``[pos]`` table of the device config; the schema is a contract (contracts/pos_config.py),
shared with the bridge, which checks device configs before it hands them out."""

from contracts.pos_config import PosConfig as PosConfig

__all__ = ["PosConfig"]
