"""The broker side of hwbus: topology, users and the management API."""
