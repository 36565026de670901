"""The portal's navigation: one entry per page family, in order. A later page (the operators' dashboard,
the file browser) adds its entry here with the test that decides who sees it; the header renders the list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


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
    # Operators' pages (dashboard, traces) and the file browser go here.
]


def nav_for(user) -> list[NavEntry]:
    return [entry for entry in NAV if entry.shown_to(user)]
