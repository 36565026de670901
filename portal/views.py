"""The portal's pages. Each is a shell: its data comes from the project's own API and event streams, read
by the page's script (static/portal/js/), so the portal can do nothing the API does not let the user do.
A page checks only what decides whether it exists for this user (a 404 page otherwise)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from agents.models import Action, App
from agents.selectors import app_for
from core.errors import DomainError
from observability.access import may_view_dashboard
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
    page = {"session": None, "app": app.slug, "mine": True, "operator": may_view_dashboard(request.user)}
    return render(request, "portal/conversation.html", {"app": app, "page": page, "active_nav": "store"})


@login_required
def conversation(request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
    session = readable_session(request.user, session_id)
    if session is None:
        return not_found(request)
    page = {
        "session": str(session.pk),
        "app": session.app.slug,
        "mine": session.user_id == request.user.pk,
        "operator": may_view_dashboard(request.user),  # its runs link to their traces
    }
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


@login_required
def files(request: HttpRequest) -> HttpResponse:
    """The file browser: a shell over /api/files/ (the root and the path are in the query string)."""
    return render(request, "portal/files.html", {"active_nav": "files"})


def operators_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The operators' pages: signed in, then the 404 page for whoever may not see the dashboard."""

    @login_required
    @wraps(view)
    def page(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not may_view_dashboard(request.user):
            return not_found(request)
        return view(request, *args, **kwargs)

    return page


@operators_only
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/dashboard.html", {"active_nav": "dashboard"})


@operators_only
def traces(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/traces.html", {"active_nav": "dashboard"})


@operators_only
def trace(request: HttpRequest, trace_id: str) -> HttpResponse:
    # Whether the trace exists is the API's to say (GET /api/traces/<id>): the page shows its answer.
    context = {"trace_id": trace_id, "page": {"trace": trace_id}, "active_nav": "dashboard"}
    return render(request, "portal/trace.html", context)


def _app(request: HttpRequest, slug: str, action: str) -> App | None:
    """The app if the user may do ``action`` on it; a page answers the rest, seen or not, as not found."""
    try:
        return app_for(user=request.user, slug=slug, action=action)
    except DomainError:
        return None
