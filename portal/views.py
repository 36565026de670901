"""The portal's pages. Each is a shell: its data comes from the project's own API and event streams, read
by the page's script (static/portal/js/), so the portal can do nothing the API does not let the user do.
A page checks only what decides whether it exists for this user (a 404 page otherwise)."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from agents.models import Action, App
from agents.selectors import app_for
from core.errors import DomainError
from runs.selectors import readable_run, readable_session


def not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/not_found.html", status=404)


def home(request: HttpRequest) -> HttpResponse:
    return redirect("portal:store")


@login_required
def store(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/store.html", {"active_nav": "store"})


@login_required
def runs(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/runs.html", {"active_nav": "runs"})


@login_required
def prompts(request: HttpRequest, slug: str) -> HttpResponse:
    app = _app(request, slug, Action.PROMPT_EDIT)
    if app is None:
        return not_found(request)
    page = {"app": app.slug}
    return render(request, "portal/prompts.html", {"app": app, "page": page, "active_nav": "store"})


@login_required
def conversation_new(request: HttpRequest, slug: str) -> HttpResponse:
    app = _app(request, slug, Action.SEE)
    if app is None:
        return not_found(request)
    page = {"session": None, "app": app.slug, "mine": True}
    return render(request, "portal/conversation.html", {"app": app, "page": page, "active_nav": "store"})


@login_required
def conversation(request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
    session = readable_session(request.user, session_id)
    if session is None:
        return not_found(request)
    page = {"session": str(session.pk), "app": session.app.slug, "mine": session.user_id == request.user.pk}
    context = {"app": session.app, "session": session, "page": page, "active_nav": "store"}
    return render(request, "portal/conversation.html", context)


@login_required
def run_page(request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
    run = readable_run(request.user, run_id)
    if run is None:
        return not_found(request)
    return redirect(f"/portal/sessions/{run.session_id}#run-{run.pk}")


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/inbox.html", {"active_nav": "inbox"})


def _app(request: HttpRequest, slug: str, action: str) -> App | None:
    """The app if the user may do ``action`` on it; a page answers the rest, seen or not, as not found."""
    try:
        return app_for(user=request.user, slug=slug, action=action)
    except DomainError:
        return None
