"""Who may do what (CONTRACT 2.7): the caller a token names, its scopes, and the rules of each act.

The api verifies a bearer token (adapters/auth) and turns its claims into a `Caller` here; each
handler asks one question of it. With IMAGES_AUTH=off every request is `ANONYMOUS`, which may do
everything, as before authentication existed. Upload commands on Kafka have no caller: the
broker's ACLs decide who may write to `image-upload-requested`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core import errors, fields

UPLOAD = "images:upload"
READ = "images:read"
CONFIRM = "images:confirm"
METRICS = "images:metrics"
SCOPES = (UPLOAD, READ, CONFIRM, METRICS)
MAX_SCOPE_CHARS = 4096
MAX_REFERENCE_TYPES = 64


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the token's subject, its scopes and the reference types it may confirm."""

    subject: str | None  # None: anonymous (IMAGES_AUTH=off)
    scopes: frozenset[str]
    reference_types: frozenset[str] | None = None  # None: every type


ANONYMOUS = Caller(None, frozenset(SCOPES))


def caller_of(claims: Mapping[str, Any]) -> Caller:
    """The caller a verified token's claims name; a claim of the wrong shape makes the token invalid."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > fields.UPLOADER_ID:
        raise errors.Unauthorized(f"the token's sub must be a string of 1 to {fields.UPLOADER_ID} characters")
    scope = claims.get("scope", "")
    if not isinstance(scope, str) or len(scope) > MAX_SCOPE_CHARS:
        raise errors.Unauthorized("the token's scope must be a space-separated string")
    types = claims.get("ref_types")
    if types is not None and (
        not isinstance(types, list)
        or len(types) > MAX_REFERENCE_TYPES
        or not all(isinstance(t, str) and len(t) <= fields.CATEGORY for t in types)
    ):
        raise errors.Unauthorized("the token's ref_types must be a list of reference type codes")
    allowed = None if types is None else frozenset(t.upper() for t in types)
    return Caller(subject, frozenset(scope.split()), allowed)


def require(caller: Caller, scope: str) -> None:
    """Raise FORBIDDEN unless the caller holds `scope`."""
    if scope not in caller.scopes:
        raise errors.Forbidden(f"the token lacks the scope {scope}", scope=scope)


def uploader_of(caller: Caller, form_uploader: str | None) -> str | None:
    """The uploader of an upload: the token's subject (a form's uploaderId must match it)."""
    require(caller, UPLOAD)
    if caller.subject is None:
        return form_uploader
    if form_uploader is not None and form_uploader.strip() and form_uploader != caller.subject:
        raise errors.Forbidden("uploaderId must be the token's subject")
    return caller.subject


def require_read(caller: Caller, uploader_id: str | None) -> None:
    """Raise FORBIDDEN unless the caller may read an image uploaded by `uploader_id` (None: no such image)."""
    if READ in caller.scopes:
        return
    if caller.subject is None or uploader_id != caller.subject:
        raise errors.Forbidden(f"the token lacks the scope {READ} and this is not its own image", scope=READ)


def require_reference_type(caller: Caller, reference_type: str) -> None:
    """Raise FORBIDDEN unless the caller may confirm images of `reference_type`."""
    if caller.reference_types is not None and reference_type.upper() not in caller.reference_types:
        raise errors.Forbidden(f"the token may not confirm {reference_type} references")


def confirmable(caller: Caller, reference_types: list[str]) -> list[str]:
    """The reference types among these that the caller may confirm (a delete-all without a type)."""
    if caller.reference_types is None:
        return reference_types
    return [t for t in reference_types if t.upper() in caller.reference_types]
