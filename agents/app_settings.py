"""An app's settings in three layers — app default < project < user — and the effective settings a run
starts with.

**Merge.** The effective settings are a shallow merge per top-level key: each key takes the value of the
highest layer that sets it (user over project over app default). An object value is replaced whole, never
merged key by key, so a layer that sets ``{"limits": {"a": 1}}`` hides the ``limits`` of the layers below.

**Validation.** Each layer is checked against ``App.settings_schema`` (JSON Schema, Draft 2020-12) with
``required`` ignored, since another layer may supply a required key; the merged result is checked with
``required`` honoured when a run starts. An app without a schema takes no settings (only ``{}``).

**Secrets.** A schema property with ``"writeOnly": true`` is a secret: never returned by the API, never
copied into a run (``Run.settings`` lists the names under ``"$secrets"``); the worker reads the values
from the current rows when it sends the start request to the executor. A PUT that omits a secret keeps its
stored value (clients cannot read it back to resend it); a secret given as ``null`` is removed.

**Deadline.** A setting ``run_deadline_s`` (a positive integer) can only shorten a run: its deadline is
``min(run_deadline_s, app.run_deadline_s or RUN_DEADLINE_S)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext_lazy
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError as SchemaViolation
from referencing.exceptions import Unresolvable

from agents.access import can
from agents.models import Action, App, AppSetting, Project, SettingScope
from agents.projects import may_work_in, project_not_found
from agents.selectors import NotAllowedOnApp
from core.errors import Conflict, DomainError, Forbidden

SECRETS_KEY = "$secrets"  # in Run.settings: the names of the secrets the run was started with
ROOT = "$"  # the detail key of an error about the settings object as a whole
LAYER_MAX_BYTES = 64 * 1024
MAX_ERRORS = 50
LAYER_ORDER: dict[str, int] = {SettingScope.APP: 0, SettingScope.PROJECT: 1, SettingScope.USER: 2}


class SettingsRejected(DomainError):
    status = 400
    code = "invalid"
    message = gettext_lazy("Invalid input.")


class SettingsInvalid(DomainError):
    status = 400
    code = "settings_invalid"
    message = gettext_lazy(
        "The app's effective settings do not satisfy its schema: complete them before starting runs."
    )


class SchemaBroken(Conflict):
    code = "settings_schema_broken"
    message = gettext_lazy(
        "The app's settings schema cannot be applied (an unresolvable $ref or a bad pattern)."
    )


class NotYourSettings(Forbidden):
    code = "not_your_settings"
    message = gettext_lazy("Only the user themselves may change their settings.")


def secret_names(schema: Any) -> set[str]:
    """The top-level properties the schema marks ``"writeOnly": true``."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return set()
    return {
        name for name, spec in properties.items() if isinstance(spec, dict) and spec.get("writeOnly") is True
    }


def public_settings(schema: Any, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``values`` without its secrets, and the names of the secrets it holds (``secrets_set``)."""
    secrets = secret_names(schema)
    public = {name: value for name, value in values.items() if name not in secrets}
    return public, sorted(name for name in values if name in secrets)


# --- reading the layers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Merged:
    values: dict[str, Any]
    sources: dict[str, str]  # each key's layer: "app", "project" or "user"


def merged_settings(*, app: App, project_id: int | None, user_id: int | None) -> Merged:
    """The layers that apply to one run of ``app``, read in one statement and merged (see the module).

    Written out: every run start reads it, and the ORM's building of the statement cost more than
    running it (bench/runs.py)."""
    with connection.cursor() as cursor:
        cursor.execute(_LAYERS_SQL, [app.pk, user_id or 0, project_id or 0])
        rows = cursor.fetchall()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for scope, layer in sorted(rows, key=lambda row: LAYER_ORDER[row[0]]):
        for name, value in (json.loads(layer) if isinstance(layer, str) else layer or {}).items():
            values[name] = value
            sources[name] = scope
    return Merged(values, sources)


_LAYERS_SQL = (
    f"SELECT scope, {connection.ops.quote_name('values')} FROM {AppSetting._meta.db_table}"  # noqa: S608
    " WHERE app_id = %s AND (scope = 'app' OR (scope = 'user' AND user_id = %s)"
    " OR (scope = 'project' AND project_id = %s))"
)


def effective_settings(*, app: App, project: Project | None = None, user) -> dict[str, Any]:
    """The settings a run of ``app`` by ``user`` in ``project`` starts with, secrets included."""
    return merged_settings(app=app, project_id=project.pk if project else None, user_id=user.pk).values


def settings_for_executor(
    *, app: App, project_id: int | None, user_id: int, recorded: dict[str, Any]
) -> dict:
    """The ``settings`` of a run's start request: what the run recorded, with its secrets' values read
    from the current rows (a run never holds them). A run without secrets costs no query."""
    names = recorded.get(SECRETS_KEY) or []
    values = {name: value for name, value in recorded.items() if name != SECRETS_KEY}
    if names:
        current = merged_settings(app=app, project_id=project_id, user_id=user_id).values
        values.update({name: current[name] for name in names if name in current})
    return values


def run_deadline_s(app: App, values: dict[str, Any]) -> float:
    """The run's time limit: the app's (or ``RUN_DEADLINE_S``), lowered — never raised — by a
    ``run_deadline_s`` setting."""
    ceiling = app.run_deadline_s or settings.RUN_DEADLINE_S
    wanted = values.get("run_deadline_s")
    if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > 0:
        return min(wanted, ceiling)
    return ceiling


def run_settings(*, app: App, project_id: int | None, user) -> tuple[dict[str, Any], dict[str, Any]]:
    """For a run start: (what the run records — no secrets, their names under ``"$secrets"`` —, the whole
    effective settings). Refuses settings that do not satisfy the schema, ``required`` included."""
    schema = app.settings_schema
    if not schema:  # an app without a schema takes no settings (every layer is refused but {})
        return {}, {}
    values = merged_settings(app=app, project_id=project_id, user_id=user.pk).values
    errors = validation_errors(schema, values, layer=False)
    if errors:
        raise SettingsInvalid(detail=errors)
    public, secrets = public_settings(schema, values)
    return ({**public, SECRETS_KEY: secrets} if secrets else public), values


# --- validation ------------------------------------------------------------------------------------------
def _ignore(validator, value, instance, schema) -> Iterable[SchemaViolation]:
    return ()


# A layer may leave a required key to another layer.
LayerValidator = validators.extend(Draft202012Validator, {"required": _ignore})


def validation_errors(schema: dict, values: dict[str, Any], *, layer: bool) -> dict[str, list[str]]:
    """Every violation of ``schema`` by ``values``, by field path (``"model"``, ``"limits.tokens"``)."""
    if not schema:
        return {name: ["This app takes no settings."] for name in values}
    validator = (LayerValidator if layer else Draft202012Validator)(schema)
    errors: dict[str, list[str]] = {}
    if SECRETS_KEY in values:
        errors[SECRETS_KEY] = ["This name is reserved."]
    try:
        for count, error in enumerate(validator.iter_errors(values)):
            if count >= MAX_ERRORS:
                break
            for path, message in _described(error, secret_names(schema)):
                errors.setdefault(path, []).append(message)
    except (Unresolvable, re.error):
        raise SchemaBroken() from None
    return errors


def _described(error: SchemaViolation, secrets: set[str]) -> list[tuple[str, str]]:
    """(field path, message) for one violation; unknown and missing keys are named one by one, and no
    message repeats a secret's value."""
    prefix = [str(part) for part in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        extra = _additional(error.instance, error.schema)
        return [(".".join([*prefix, key]), "Not a setting of this app.") for key in extra]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [(".".join([*prefix, str(name)]), "This setting is required.") for name in missing]
    path = ".".join(prefix) or ROOT
    if not prefix or prefix[0] in secrets:
        return [(path, f"Does not satisfy the schema's {error.validator!r} rule.")]
    return [(path, error.message)]


def _additional(instance: dict, schema: dict) -> list[str]:
    properties = schema.get("properties") or {}
    patterns = list((schema.get("patternProperties") or {}).keys())
    return [
        key
        for key in instance
        if key not in properties and not any(re.search(pattern, key) for pattern in patterns)
    ]


# --- who may read and write which layer ------------------------------------------------------------------
def check_access(*, app: App, scope: str, project: Project | None, user, by, writing: bool) -> None:
    """Scope ``app``: ``app.configure`` to write (anyone who sees the app reads it, without secrets);
    ``project``: ``app.configure`` and working in the project; ``user``: ``app.use``, one's own only."""
    if (scope == SettingScope.PROJECT) != (project is not None):
        raise SettingsRejected(detail={"project": ["Give a project with scope=project, and only then."]})
    if scope == SettingScope.USER:
        if user.pk != by.pk and not by.is_superuser:
            raise NotYourSettings()
        _require(by, Action.USE, app)
        return
    if scope == SettingScope.APP and not writing:
        _require(by, Action.SEE, app)
        return
    _require(by, Action.CONFIGURE, app)
    if project is not None and not may_work_in(by, project.pk):
        raise project_not_found()


def _require(user, action: str, app: App) -> None:
    if not can(user, action, app):
        raise NotAllowedOnApp(detail={"action": action})


def setting_layer(*, app: App, scope: str, project: Project | None, user) -> AppSetting | None:
    subject = _subject(scope, project, user)
    return AppSetting.objects.select_related("updated_by").filter(app=app, scope=scope, **subject).first()


def _subject(scope: str, project: Project | None, user) -> dict[str, Any]:
    if scope == SettingScope.PROJECT:
        return {"project": project, "user": None}
    if scope == SettingScope.USER:
        return {"project": None, "user": user}
    return {"project": None, "user": None}


def layer_values(schema: Any, stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """A PUT's new layer: what was given, secrets given as null removed and secrets left out kept."""
    secrets = secret_names(schema)
    values = {name: value for name, value in given.items() if not (name in secrets and value is None)}
    for name in secrets:
        if name not in given and name in stored:
            values[name] = stored[name]
    return values


@transaction.atomic
def settings_put(
    *, app: App, scope: str, project: Project | None = None, user, values: dict[str, Any], by
) -> AppSetting:
    """Replace one layer of ``app``'s settings (``user`` is whose layer, for scope ``user``), checked
    against the app's schema with ``required`` ignored (see the module)."""
    check_access(app=app, scope=scope, project=project, user=user, by=by, writing=True)
    subject = _subject(scope, project, user)
    row = AppSetting.objects.select_for_update().filter(app=app, scope=scope, **subject).first()
    new = layer_values(app.settings_schema, row.values if row else {}, values)
    if len(json.dumps(new)) > LAYER_MAX_BYTES:
        raise SettingsRejected(detail={"values": [f"At most {LAYER_MAX_BYTES} bytes of JSON."]})
    errors = validation_errors(app.settings_schema, new, layer=True)
    if errors:
        raise SettingsRejected(detail=errors)
    if row is None:
        row = AppSetting(app=app, scope=scope, **subject)
    row.values, row.updated_by = new, by
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # a concurrent first PUT of the same layer made the row
        raise Conflict("The settings changed meanwhile: try again.", code="settings_changed") from None
    return row
