"""Confirm endpoints (CONTRACT 2.2-2.4): parse, call one core service, answer 200 with no body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from adapters.db.mariadb import MariaDbUnitOfWork, in_transaction_retrying
from adapters.ids import new_id
from api import idempotent, keys
from api.auth import caller
from core import auth, errors, idempotency, services
from core.idempotency import Remember
from core.images import Image


async def confirm_single(request: web.Request) -> web.Response:
    """`POST /api/v1/images/confirm/{referenceId}?imageId=X`; `imageId=""` deletes all."""
    auth.require(caller(request), auth.CONFIRM)
    reference_id = request.match_info["reference_id"]
    if "imageId" not in request.query:
        raise errors.ValidationError("imageId is required")
    image_id = request.query["imageId"]
    reference_type = _reference_type(request, request.query.get("referenceType"))
    if image_id.strip() == "" and image_id != "":
        raise errors.ValidationError("imageId must not be blank")
    meaning = [b"single", reference_id.encode(), image_id.encode(), (reference_type or "").encode()]
    if image_id == "":
        return await _once(request, meaning, _delete_all(request, reference_id, reference_type))
    return await _once(request, meaning, _confirm(request, reference_id, [image_id]))


async def confirm_batch(request: web.Request) -> web.Response:
    """`POST /api/v1/images/confirm` with `{"imageIds": [...], "referenceId": "..."}`; `[]` deletes all."""
    auth.require(caller(request), auth.CONFIRM)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="Content-Type must be application/json")
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise errors.ValidationError("malformed JSON body") from None
    image_ids, reference_id = _batch_fields(body)
    meaning = [b"batch", reference_id.encode(), orjson.dumps(image_ids)]
    if not image_ids:
        reference_type = _reference_type(request, body.get("referenceType"))
        meaning.append((reference_type or "").encode())
        return await _once(request, meaning, _delete_all(request, reference_id, reference_type))
    return await _once(request, meaning, _confirm(request, reference_id, image_ids))


def _batch_fields(body: Any) -> tuple[list[str], str]:
    if not isinstance(body, dict):
        raise errors.ValidationError("body must be a JSON object")
    image_ids, reference_id = body.get("imageIds"), body.get("referenceId")
    if not isinstance(image_ids, list) or not all(isinstance(i, str) for i in image_ids):
        raise errors.ValidationError("imageIds must be a list of strings")
    if not isinstance(reference_id, str) or not reference_id.strip():
        raise errors.ValidationError("referenceId is required")
    return image_ids, reference_id


def _reference_type(request: web.Request, raw: Any) -> str | None:
    """Optional scope of a delete-all; without it every type using the referenceId is cleared."""
    if raw is None or raw == "":
        return None
    rule = request.app[keys.REFERENCES].data.rule_for(str(raw))
    if rule is None:
        raise errors.ReferenceTypeNotFound(f"unknown reference type {raw!r}")
    return rule.code


UseCase = Callable[[MariaDbUnitOfWork, datetime, Remember | None], Awaitable[services.ConfirmResult]]


def _confirm(request: web.Request, reference_id: str, image_ids: list[str]) -> UseCase:
    references = request.app[keys.REFERENCES].data
    request[keys.LOG_FIELDS] = {"reference_id": reference_id, "image_ids": image_ids}
    who = caller(request)
    return lambda uow, now, remember: services.confirm_images(
        uow,
        reference_id=reference_id,
        image_ids=image_ids,
        references=references,
        now=now,
        new_id=new_id,
        by=who.subject,
        remember=remember,
        caller=who,
    )


def _delete_all(request: web.Request, reference_id: str, reference_type: str | None) -> UseCase:
    who = caller(request)
    return lambda uow, now, remember: services.delete_all(
        uow,
        reference_id=reference_id,
        reference_type=reference_type,
        now=now,
        new_id=new_id,
        by=who.subject,
        remember=remember,
        caller=who,
    )


async def _once(request: web.Request, meaning: list[bytes], use_case: UseCase) -> web.Response:
    """Answer 200 with no body, once per Idempotency-Key (api/idempotent.py)."""
    # A key is the caller's own: another caller's request under the same key is not its replay.
    keyed = await idempotent.keyed(request, idempotency.CONFIRM, caller(request).subject or "", meaning)

    async def work(remember: Remember | None) -> list[Image]:
        await _run(request, lambda uow, now: use_case(uow, now, remember))
        return []

    return await idempotent.answer_once(request, keyed, idempotency.empty_answer, work)


async def _run(
    request: web.Request,
    use_case: Callable[[MariaDbUnitOfWork, datetime], Awaitable[services.ConfirmResult]],
) -> None:
    """Run a confirm transaction, again from the start if MariaDB picked it as a deadlock victim."""
    pool = request.app[keys.POOL]
    result = await in_transaction_retrying(lambda: use_case(MariaDbUnitOfWork(pool), datetime.now(UTC)))
    fields = request.get(keys.LOG_FIELDS, {})
    fields["events"] = [p.event for p in result.applied]
    request[keys.LOG_FIELDS] = fields
