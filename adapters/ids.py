"""The one id factory: images, events and requests get random UUIDs (v4) as text."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """Return a fresh random id, e.g. `5b0c3c36-8f1e-4c55-9a57-3f0c2d1b7e4a`."""
    return str(uuid.uuid4())
