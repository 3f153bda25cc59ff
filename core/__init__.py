"""Pure domain core: rules, events, use cases and settings. Imports only the stdlib and itself."""
