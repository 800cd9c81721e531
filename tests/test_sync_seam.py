"""sync/ sits below the agent (DESIGN.md's layers): it imports nothing from agent/, not
even lazily, and talks to the device only through its own interfaces
(sync/device_store.py, sync/agent_link.py's LinkHost, sync/commands.py's router)."""

from __future__ import annotations

import grimp


def test_sync_imports_nothing_from_the_agent() -> None:
    graph = grimp.build_graph("sync", "agent", "contracts", "drivers")  # lazy imports too
    crossings = sorted(
        (module, imported) for module in graph.find_children("sync") | {"sync"}
        for imported in graph.find_modules_directly_imported_by(module)
        if imported == "agent" or imported.startswith("agent."))
    assert not crossings


def test_the_agent_store_implements_the_sync_interfaces() -> None:
    # structural: every method sync calls exists on the agent's classes
    from agent.store.sync_store import MembershipData, SyncStore
    from sync.device_store import DeviceStore, MembershipStore

    for protocol, cls in ((MembershipStore, MembershipData), (DeviceStore, SyncStore)):
        wanted = {name for name in dir(protocol) if not name.startswith("_")}
        assert wanted <= set(dir(cls)), wanted - set(dir(cls))
