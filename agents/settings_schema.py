"""App settings are described by a JSON Schema (``App.settings_schema``) and checked with ``jsonschema``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


def check_schema(schema: Any) -> None:
    """Refuse what is not a JSON Schema for an object (Draft 2020-12)."""
    if not isinstance(schema, dict):
        raise ValidationError("The settings schema must be a JSON object (a JSON Schema).")
    if not schema:
        return  # no schema: the app takes no settings
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValidationError(f"Not a valid JSON Schema: {exc.message}") from None
    if schema.get("type", "object") != "object":
        raise ValidationError('Settings are a JSON object: the schema\'s "type" must be "object".')
