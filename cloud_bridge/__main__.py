"""python -m cloud_bridge == cloud-bridge."""

from cloud_bridge.cli import app

app()
