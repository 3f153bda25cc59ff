"""The component schemas of the OpenAPI document (api/openapi.py): what the bodies look like."""

from __future__ import annotations

from typing import Any

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["timestamp", "status", "code", "message", "path"],
        "properties": {
            "timestamp": {"type": "string", "format": "date-time"},
            "status": {"type": "integer"},
            "code": {"type": "string"},
            "message": {"type": "string"},
            "path": {"type": "string"},
        },
    },
    "Image": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["TEMP", "READY", "CONFIRMED", "DELETED", "FAILED"]},
            "referenceType": {"type": "string"},
            "referenceId": {"type": ["string", "null"]},
            "imageUrl": {"type": "string"},
            "seqNumber": {"type": ["integer", "null"]},
            "originSize": {"type": ["integer", "null"]},
            "convertedSize": {"type": ["integer", "null"]},
            "originFormat": {"type": ["string", "null"]},
            "convertedFormat": {"type": ["string", "null"]},
            "width": {"type": ["integer", "null"], "description": "Pixels of the stored image"},
            "height": {"type": ["integer", "null"]},
            "variants": {
                "type": "array",
                "description": "Smaller widths made at conversion (per reference type), ascending; "
                "empty until READY, and for images narrower than every width",
                "items": {"$ref": "#/components/schemas/Variant"},
            },
        },
    },
    "Variant": {
        "type": "object",
        "required": ["width", "height", "imageUrl"],
        "properties": {
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "imageUrl": {"type": "string", "description": "`{uuid}_{width}w.webp` beside the full size"},
        },
    },
    "Extension": {
        "type": "object",
        "required": ["code", "name"],
        "properties": {"code": {"type": "string"}, "name": {"type": "string"}},
    },
    "ReferenceType": {
        "type": "object",
        "required": ["code", "name", "allowsMultiple", "maxImages", "description"],
        "properties": {
            "code": {"type": "string"},
            "name": {"type": "string"},
            "allowsMultiple": {"type": "boolean"},
            "maxImages": {"type": ["integer", "null"], "description": "null: unlimited"},
            "description": {"type": ["string", "null"]},
        },
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["UP", "DOWN"]},
            "components": {"type": "object", "additionalProperties": {"type": "object"}},
        },
    },
}
