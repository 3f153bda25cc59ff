"""The OpenAPI 3.1 document of every route (a test checks each registered route is here)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.errors import dumps
from api.openapi_schemas import SCHEMAS
from core import fields

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str, links: dict[str, Any] | None = None) -> dict[str, Any]:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    return response | ({"links": links} if links else {})


def _text(max_length: int, description: str | None = None) -> dict[str, Any]:
    """A string field the service checks: not blank, at most its column's length (core/fields.py)."""
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": max_length}
    return schema | ({"description": description} if description else {})


def _link(image_id: str) -> dict[str, Any]:
    return {"operationId": "getImage", "parameters": {"image_id": image_id}}


def _errors(*statuses: int) -> dict[str, Any]:
    described = {
        503: "SERVICE_UNAVAILABLE: nothing was stored. MariaDB or the storage cannot be reached, or (uploads) the"
        " process holds as many uploads as it may, answered before the body is read (with `Expect: 100-continue`,"
        " instead of continuing); retry after the Retry-After header's seconds",
        401: "UNAUTHORIZED (IMAGES_AUTH=jwt): no bearer token, or a bad one; see WWW-Authenticate",
        403: "FORBIDDEN: the token lacks the scope, or names another uploader or reference type",
        429: "QUOTA_EXCEEDED: the uploader's quota; retry after the Retry-After header's seconds",
    }
    return {str(s): _json(ERROR, described.get(s, "Error (CONTRACT section 2)")) for s in statuses}


UPLOAD_RESULT = {
    "type": "object",
    "required": ["id", "imageUrl", "status"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "imageUrl": {"type": "string", "format": "uri"},
        "status": {"type": "string", "enum": ["PROCESSING", "READY"]},
    },
}

# The optional scope of a delete-all: absent, null or empty clears every type using the referenceId.
SCOPE = {"type": ["string", "null"], "maxLength": fields.CATEGORY, "description": "A reference type code (any case)"}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "description": (
        "Optional. The same key (from the same uploader, for uploads) within 24 h answers the first"
        " request's status and body again, with `Idempotency-Replayed: true`, and does nothing twice;"
        " the key with a different request is 422 IDEMPOTENCY_KEY_REUSED; while the first is in flight,"
        " 409 IDEMPOTENCY_REQUEST_IN_PROGRESS. Errors are not kept: a refused request may be retried."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": fields.IDEMPOTENCY_KEY},
}


def _keyed(statuses: tuple[int, ...]) -> dict[str, Any]:
    """The errors of an endpoint that takes Idempotency-Key."""
    return _errors(*statuses, 409, 422)


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "image-server", "version": "0.1.0", "description": "Image upload, conversion and confirm."},
    "paths": {
        "/api/images": {
            "post": {
                "summary": "Upload one (`file`) or several (`files`) images",
                "parameters": [{"name": "sync", "in": "query", "schema": {"type": "boolean"}}, IDEMPOTENCY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["uploaderId", "category"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                    "uploaderId": _text(fields.UPLOADER_ID),
                                    "category": _text(fields.CATEGORY, "A reference type code (any case)"),
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {"oneOf": [UPLOAD_RESULT, {"type": "array", "items": UPLOAD_RESULT}]},
                        "The accepted image(s), in part order",
                        links={
                            "GetImage": _link("$response.body#/id"),
                            "GetFirstImage": _link("$response.body#/0/id"),
                        },
                    ),
                    **_keyed((400, 413, 415, 429, 500, 503)),
                },
            }
        },
        "/api/v1/images/{image_id}": {
            "get": {
                "summary": "Read one image",
                "operationId": "getImage",
                "parameters": [{"name": "image_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json({"$ref": "#/components/schemas/Image"}, "The image"), **_errors(404, 503)},
            }
        },
        "/api/v1/images/confirm/{reference_id}": {
            "post": {
                "summary": "Confirm one image to a reference; imageId='' deletes all",
                "parameters": [
                    {"name": "reference_id", "in": "path", "required": True, "schema": _text(fields.REFERENCE_ID)},
                    {
                        "name": "imageId",
                        "in": "query",
                        "required": True,
                        "description": "The image to confirm; empty deletes every image of the reference",
                        "schema": {"type": "string", "maxLength": fields.IMAGE_ID},
                    },
                    {"name": "referenceType", "in": "query", "schema": SCOPE},
                    IDEMPOTENCY_KEY,
                ],
                "responses": {"200": {"description": "Confirmed (empty body)"}, **_keyed((400, 404, 500, 503))},
            }
        },
        "/api/v1/images/confirm": {
            "post": {
                "summary": "Replace a reference's ordered image list; [] deletes all",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["imageIds", "referenceId"],
                                "properties": {
                                    "imageIds": {"type": "array", "items": _text(fields.IMAGE_ID)},
                                    "referenceId": _text(fields.REFERENCE_ID),
                                    "referenceType": SCOPE,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "Confirmed (empty body)"},
                    **_keyed((400, 404, 415, 500, 503)),
                },
            }
        },
        "/api/v1/enums/extensions": {
            "get": {
                "summary": "Extension code to name",
                "responses": {"200": _json({"type": "object", "additionalProperties": {"type": "string"}}, "Map")},
            }
        },
        "/api/v1/enums/referenceType": {
            "get": {
                "summary": "Reference type code to name",
                "responses": {"200": _json({"type": "object", "additionalProperties": {"type": "string"}}, "Map")},
            }
        },
        "/api/extensions": {
            "get": {
                "summary": "Extensions as the original service served them (use /api/v1/enums/extensions)",
                "deprecated": True,
                "responses": {
                    "200": _json(
                        {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Extension"}}, "Map"
                    )
                },
            }
        },
        "/api/referenceType": {
            "get": {
                "summary": "Reference types as the original service served them (use /api/v1/enums/referenceType)",
                "deprecated": True,
                "responses": {
                    "200": _json(
                        {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/ReferenceType"}},
                        "Map",
                    )
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness",
                "responses": {
                    "200": {"description": "Server is up", "content": {"text/plain": {"schema": {"type": "string"}}}}
                },
            }
        },
        "/actuator/health": {
            "get": {
                "summary": "Readiness: db, diskSpace, kafka, fileSystem (the storage: a directory, or the bucket)",
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Health"}, "All components UP"),
                    "503": _json({"$ref": "#/components/schemas/Health"}, "A component is DOWN"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {"description": "Text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
                },
            }
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}
        },
        "/images/{key}": {
            "get": {
                "summary": "Stored files of a file:// store (local runs; elsewhere nginx or the bucket's CDN)",
                "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The file"}, **_errors(404)},
            }
        },
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "With IMAGES_AUTH=jwt (docs/security.md); the list names the scope an operation needs",
            }
        },
    },
}

# The scope each secured operation needs (CONTRACT 2.7); None: any valid token. Everything else is open.
SCOPE_OF = {
    ("/api/images", "post"): "images:upload",
    ("/api/v1/images/{image_id}", "get"): "images:read",  # or the image's own uploader
    ("/api/v1/images/confirm/{reference_id}", "post"): "images:confirm",
    ("/api/v1/images/confirm", "post"): "images:confirm",
    ("/metrics", "get"): "images:metrics",
}


def _secure(document: dict[str, Any]) -> None:
    """Say which operations want a token (and which scope), and their 401 and 403 answers."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not (path.startswith("/api/") or path == "/metrics"):
                operation["security"] = []
                continue
            scope = SCOPE_OF.get((path, method))
            # `{}`: with IMAGES_AUTH=off (the default) no token is needed.
            operation["security"] = [{"bearerAuth": [scope] if scope else []}, {}]
            operation["responses"] |= _errors(401, 403)


# Swagger UI groups operations by their first tag (one "default" group otherwise).
TAGS = (
    ("uploads", "Upload images (CONTRACT 2.1)", ("/api/images",)),
    ("images", "Read an image", ("/api/v1/images/{image_id}",)),
    ("confirm", "Confirm images to a reference, in order (CONTRACT 2.2-2.5)", ("/api/v1/images/confirm",)),
    ("reference data", "Extensions and reference types", ("/api/v1/enums/", "/api/extensions", "/api/referenceType")),
    (
        "operations",
        "Health, metrics, this document, stored files",
        ("/health", "/actuator/", "/metrics", "/openapi.json", "/images/"),
    ),
)


def _tag(document: dict[str, Any]) -> None:
    """Give each operation the tag of the first group its path starts with."""
    document["tags"] = [{"name": name, "description": about} for name, about, _ in TAGS]
    for path, operations in document["paths"].items():
        name = next(name for name, _, prefixes in TAGS if path.startswith(prefixes))
        for operation in operations.values():
            operation["tags"] = [name]


_secure(DOCUMENT)
_tag(DOCUMENT)


async def openapi(request: web.Request) -> web.Response:
    """Serve the OpenAPI document."""
    return web.json_response(DOCUMENT, dumps=dumps)
