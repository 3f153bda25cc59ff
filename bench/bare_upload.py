"""The baseline of the ingest benchmark: a bare aiohttp handler that stores multipart uploads.

It does what any upload server must (read the parts, write each file), and nothing this service
adds (validation, sniffing, fsync, the database transaction, the outbox).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from aiohttp import web

ROOT = Path(sys.argv[2])


async def upload(request: web.Request) -> web.Response:
    reader = await request.multipart()
    ids = []
    while (part := await reader.next()) is not None:
        data = await part.read()  # type: ignore[union-attr]
        if part.filename:  # type: ignore[union-attr]
            image_id = str(uuid.uuid4())
            (ROOT / f"{image_id}.bin").write_bytes(data)
            ids.append(image_id)
    return web.json_response({"id": ids[0], "status": "PROCESSING"})


if __name__ == "__main__":
    app = web.Application(client_max_size=100 * 1024 * 1024)
    app.router.add_post("/api/images", upload)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
