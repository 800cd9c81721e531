"""POS receipts with Slovenian fiscal verification (FURS), printed on ESC/POS, working offline.

See docs/pos.md for the flow, the fields and the sources."""
