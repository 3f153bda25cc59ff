"""A small HTTP client for the e2e tests: the API's calls, nothing else."""

from __future__ import annotations

import io
from typing import Any

import aiohttp


class ImageClient:
    """Talks to a running `python -m api`."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self._session.close()

    async def upload(
        self,
        files: list[tuple[str, bytes]],
        *,
        category: str,
        uploader: str = "e2e",
        sync: bool = False,
        field: str = "files",
    ) -> tuple[int, Any]:
        form = aiohttp.FormData()
        for name, data in files:
            form.add_field(field, io.BytesIO(data), filename=name, content_type="application/octet-stream")
        form.add_field("uploaderId", uploader)
        form.add_field("category", category)
        async with self._session.post(
            f"{self.base}/api/images", data=form, params={"sync": "true"} if sync else None
        ) as r:
            return r.status, await r.json()

    async def image(self, image_id: str) -> tuple[int, Any]:
        async with self._session.get(f"{self.base}/api/v1/images/{image_id}") as r:
            return r.status, await r.json()

    async def confirm(self, reference_id: str, image_ids: list[str]) -> tuple[int, Any]:
        body = {"imageIds": image_ids, "referenceId": reference_id}
        async with self._session.post(f"{self.base}/api/v1/images/confirm", json=body) as r:
            return r.status, (await r.json() if r.status != 200 else None)

    async def get(self, path_or_url: str) -> tuple[int, bytes]:
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        async with self._session.get(url) as r:
            return r.status, await r.read()
