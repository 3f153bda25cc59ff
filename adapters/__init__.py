"""I/O adapters: one technology per module. None reads the environment or connects at import."""
