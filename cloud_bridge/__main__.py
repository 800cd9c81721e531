"""python -m cloud_bridge == cloud-bridge."""

from cloud_bridge.cli_entry import main

main()
