"""3click till: the cashier's touch screen served by the agent (docs/pos.md, "Till")."""
