"""Prompt versions: saved once and never changed; an app's active version moves only by an activation.

Rolling back is activating an older version. Every move appends a ``PromptActivation`` (to which version,
from which, by whom, why), so the history of what runs started with is the activations list. Both writes
lock the app's row: numbers are handed out one app at a time (the unique constraint backs it), and the
active pointer and its history row change together.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext_lazy

from agents.models import App, PromptActivation, PromptVersion
from agents.selectors import config_cache_clear
from core.errors import Conflict, DomainError, NotFound

TEXT_MAX = 100_000
MESSAGE_MAX = 500
REASON_MAX = 500
PARAMETERS_MAX_BYTES = 16 * 1024
FIRST_VERSION_REASON = "The app's first version."
DIFF_CONTEXT = 3
# Lines of the old part × lines of the new part difflib may compare: at 500 × 500 its worst case measured
# 37 ms; beyond it the changed part is shown wholly replaced.
DIFF_WORK_MAX = 250_000
HUNK_START = re.compile(r"([-+])(\d+)")


class InvalidPrompt(DomainError):
    code = "invalid_prompt"
    message = gettext_lazy("The prompt version is not valid.")


class AlreadyActive(Conflict):
    code = "already_active"
    message = gettext_lazy("This version is already the app's active prompt.")


def prompt_version_not_found() -> NotFound:
    return NotFound("No such prompt version of this app.", code="prompt_version_not_found")


def _has_nul(value: Any) -> bool:
    # PostgreSQL stores no NUL in text, nor \u0000 in jsonb: refused here rather than a database error.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def check_prompt(*, text: str, parameters: Any, message: str) -> None:
    """Raise ``InvalidPrompt`` naming every field that is out of bounds."""
    problems = {}
    if not isinstance(text, str) or not text.strip() or len(text) > TEXT_MAX or "\x00" in text:
        problems["text"] = f"Enter a text of 1 to {TEXT_MAX} characters (no NUL)."
    if not isinstance(parameters, dict) or _has_nul(parameters):
        problems["parameters"] = "Enter a JSON object (no NUL)."
    elif len(json.dumps(parameters).encode()) > PARAMETERS_MAX_BYTES:
        problems["parameters"] = f"At most {PARAMETERS_MAX_BYTES} bytes of JSON."
    if not isinstance(message, str) or len(message) > MESSAGE_MAX or "\x00" in message:
        problems["message"] = f"At most {MESSAGE_MAX} characters (no NUL)."
    if problems:
        raise InvalidPrompt(detail=problems)


def check_reason(reason: str) -> None:
    if not isinstance(reason, str) or len(reason) > REASON_MAX or "\x00" in reason:
        raise InvalidPrompt(detail={"reason": f"At most {REASON_MAX} characters (no NUL)."})


def _locked(app: App) -> App:
    return App.objects.select_for_update().get(pk=app.pk)


@transaction.atomic
def prompt_version_create(
    *,
    app: App,
    text: str,
    parameters: dict[str, Any] | None = None,
    message: str = "",
    author,
    activate: bool = False,
    reason: str = "",
) -> PromptVersion:
    """Save the app's next version (number = the highest so far + 1, under the app's row lock).

    With ``activate`` it also becomes the active one (an activation with ``reason``). An app with no
    active prompt gets its first saved version active whatever ``activate`` says: a new app's runs start
    with the prompt it was given.
    """
    parameters = {} if parameters is None else parameters
    check_prompt(text=text, parameters=parameters, message=message)
    check_reason(reason)
    locked = _locked(app)
    highest = locked.prompt_versions.aggregate(highest=Max("number"))["highest"] or 0
    version = PromptVersion.objects.create(
        app=locked, number=highest + 1, text=text, parameters=parameters, message=message, author=author
    )
    first = locked.active_prompt_id is None
    if activate or first:
        _activate(locked, version, user=author, reason=reason or (FIRST_VERSION_REASON if first else ""))
    return version


@transaction.atomic
def prompt_activate(*, app: App, version: PromptVersion, user, reason: str) -> PromptActivation:
    """Make ``version`` the app's active prompt and record the move. Activating the active version is
    a 409 (``already_active``); a version of another app is a 404."""
    check_reason(reason)
    locked = _locked(app)
    if version.app_id != locked.pk:
        raise prompt_version_not_found()
    if locked.active_prompt_id == version.pk:
        raise AlreadyActive(detail={"version": version.number})
    return _activate(locked, version, user=user, reason=reason)


def _activate(app: App, version: PromptVersion, *, user, reason: str) -> PromptActivation:
    activation = PromptActivation.objects.create(
        app=app, version=version, previous_id=app.active_prompt_id, reason=reason, activated_by=user
    )
    app.active_prompt = version
    app.save(update_fields=["active_prompt", "updated_at"])  # the signal empties the cache now...
    # ...and again after the commit: a run started meanwhile in this process may have cached the old row.
    transaction.on_commit(config_cache_clear)
    return activation


class _Unmatched(str):
    """A line equal only to itself: difflib pairs none of them, so its work on them is linear."""

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return id(self)


def _shared_head(a: list[str], b: list[str]) -> int:
    count = 0
    for line_a, line_b in zip(a, b, strict=False):
        if line_a != line_b:
            break
        count += 1
    return count


def _shifted(line: str, offset: int) -> str:
    """A hunk header of the diff of the middle part, numbered as in the whole texts."""
    if not line.startswith("@@ ") or not offset:
        return line
    return HUNK_START.sub(lambda m: f"{m[1]}{int(m[2]) + offset}", line)


def prompt_diff(*, old: PromptVersion, new: PromptVersion) -> str:
    """A unified diff of two versions' texts, labelled ``v<N>``; empty when they are the same.

    difflib's time grows much faster than the texts on repetitive lines (two 100,000-character texts of
    199 distinct lines took 70 s), so it is given only what lies between the shared first and last lines
    (plus the context), and when that is still large the changed part is shown as wholly replaced.
    """
    a, b = old.text.splitlines(), new.text.splitlines()
    head = _shared_head(a, b)
    tail = _shared_head(a[head:][::-1], b[head:][::-1])
    skip, keep_tail = max(head - DIFF_CONTEXT, 0), max(tail - DIFF_CONTEXT, 0)
    a, b = a[skip : len(a) - keep_tail], b[skip : len(b) - keep_tail]
    if len(a) * len(b) > DIFF_WORK_MAX:
        a, b = [_Unmatched(line) for line in a], [_Unmatched(line) for line in b]
    lines = difflib.unified_diff(
        a, b, fromfile=f"v{old.number}", tofile=f"v{new.number}", n=DIFF_CONTEXT, lineterm=""
    )
    return "\n".join(_shifted(line, skip) for line in lines)
