"""The portal's navigation: one entry per page family, in order, each with the test that decides who sees
it (the operators' dashboard: ``may_view_dashboard``); the header renders the list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from observability.access import may_view_dashboard


@dataclass(frozen=True)
class NavEntry:
    key: str
    label: str | Promise
    url_name: str
    shown_to: Callable[[object], bool] = lambda user: True


NAV: list[NavEntry] = [
    NavEntry("store", _("App store"), "portal:store"),
    NavEntry("runs", _("Runs"), "portal:runs"),
    NavEntry("inbox", _("Inbox"), "portal:inbox"),
    NavEntry("dashboard", _("Dashboard"), "dashboard:home", shown_to=may_view_dashboard),
    # Shown to everyone: whoever holds no root sees an empty state that says so (no query per page).
    NavEntry("files", _("Files"), "portal:files"),
]


def nav_for(user) -> list[NavEntry]:
    return [entry for entry in NAV if entry.shown_to(user)]
