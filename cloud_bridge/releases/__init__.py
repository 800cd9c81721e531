"""Software releases for the devices: signing, the release folder, the HTTPS file server
and the staged rollout (docs/technician.md, "Updates and rollback")."""
