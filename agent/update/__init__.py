"""Signed software updates with automatic rollback (docs/technician.md, "Updates and
rollback").

The update root (``[update] root``, /opt/edge-agent on a device) holds one complete
Python environment per version in ``envs/<version>/`` and two symlinks: ``current``
(what the service starts) and ``previous`` (where a rollback goes). A guard process
(``python -m agent.update apply``), started detached from the *running* version's
environment, downloads and verifies a release, installs it next to the current one,
switches ``current`` by renaming a new symlink over it, restarts the agent and waits for
the new version to confirm its health; without that confirmation in time it switches
back and restarts again. Every step is written to the journal first, so a power cut at
any step leaves a ``current`` that points at a complete environment.
"""
