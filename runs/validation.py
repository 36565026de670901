"""A run's input (and its effective settings) must fit in the start request its executor will receive.

An executor refuses a body over its limit with a 413, which the worker can only turn into a failed run
after the run was accepted. So ``POST /api/runs/`` measures the start request as the worker will send it
(``agents.executor_client``: ``json.dumps`` with its defaults, so non-ASCII text counts six bytes per
character) and refuses an input that would not fit in ``EXECUTOR_MAX_BODY_BYTES``. The input is measured
as it will come back from jsonb: PostgreSQL prints numbers positionally, so ``1e300`` returns as an
integer of 301 digits.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy

from agents.models import App
from agents.plugins import registry
from agents.selectors import prompt_payload
from core.errors import DomainError

# What the start request holds beside the prompt, the input and the plugins' specs: the run id, the app's
# slug, the agent, the tool gateway's URL and token, with JSON's punctuation. Generous: well under 1 KiB.
START_ENVELOPE_BYTES = 4096


class InputTooLarge(DomainError):
    status = 413
    code = "too_large"
    message = gettext_lazy("The run's input is too large for its executor.")


def input_budget(app: App) -> int:
    """The most bytes a run's input of this app may take in the executor's start request."""
    prompt = len(json.dumps(prompt_payload(app.active_prompt_id)))
    plugins = [registry.get(name) for name in app.plugins or []]
    specs = len(json.dumps([plugin.spec() for plugin in plugins if plugin is not None]))
    return settings.EXECUTOR_MAX_BODY_BYTES - START_ENVELOPE_BYTES - prompt - specs


def check_input_fits(*, app: App, input: dict[str, Any], app_settings: dict[str, Any] | None = None) -> None:
    """Refuse an input that would not fit beside the prompt and ``app_settings`` (the run's effective
    settings, secrets included: the executor receives them all)."""
    taken = len(json.dumps(app_settings)) if app_settings else 0
    size, budget = len(json.dumps(as_stored(input))), input_budget(app) - taken
    if size > budget:
        problem = f"Takes {size} bytes in the executor's start request; at most {budget} fit."
        raise InputTooLarge(detail={"input": [problem]})


def as_stored(value: Any) -> Any:
    """``value`` as it reads back from a jsonb column."""
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return float(text) if "." in text else int(text)
    if isinstance(value, dict):
        return {key: as_stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_stored(item) for item in value]
    return value
