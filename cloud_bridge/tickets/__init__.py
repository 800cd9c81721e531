"""Printed tickets and gift vouchers on the bridge: the ledger (issues, uses from devices,
refunds), their QR, PDF and e-mail, the staff pages and the JSON API (docs/vouchers.md)."""
