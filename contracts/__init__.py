"""The wire contracts both sides speak: pure, no I/O (docs/architecture.md)."""
