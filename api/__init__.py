"""aiohttp ingress: uploads, confirms, reads and health (CONTRACT section 2)."""
