"""The file browser's API: roots, directory pages, entries and downloads, each access audited.

Every request is checked in the same order, each step before the next touches anything: the path is
parsed (400 ``invalid``, before the database or the disk), the root must be one the user holds an ACL on
(else 404, ``denied``), the ACLs must cover the path (else 404, ``denied``: a path the user may not read
is answered like a missing one, without looking at the disk), then the disk is read without following a
symlink (``files.paths``). Whatever happens, one ``FileAccessEvent`` records it.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import params, tracing
from core.errors import DomainError
from files import browse, download, paths
from files.audit import Access
from files.models import Action, FileRoot
from files.selectors import Grants, grants_on, root_by_name, roots_for

PATH_PARAM = OpenApiParameter(
    "path", str, description="Relative to the root, / between names; empty: the root."
)


class Denied(paths.EntryNotFound):
    """No ACL of the user's covers it: answered exactly like a missing file."""

    outcome = "denied"


class RootsView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The file roots I may browse",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="{roots: [{name, description}]}")},
        tags=["files"],
    )
    def get(self, request: Request) -> Response:
        roots = roots_for(request.user).values("name", "description", "project__slug")
        return Response(
            {
                "roots": [
                    {"name": r["name"], "description": r["description"], "project": r["project__slug"]}
                    for r in roots
                ]
            }
        )


class _AccessView(APIView):
    """One audited access to a root: ``serve`` does the work once the path and the root are checked."""

    permission_classes = [IsAuthenticated]
    action: str
    allow_root = True  # the root itself (an empty path) may be asked for

    def get(self, request: Request, root: str) -> HttpResponse:
        raw = request.query_params.get("path", "")
        access = Access(request, self.action, root_name=root, requested_path=raw)
        with tracing.span(f"files.{self.action}", attributes={"files.root": root[:100]}) as span:
            try:
                response = self.checked(request, access, raw)
            except DomainError as error:
                outcome = getattr(error, "outcome", "invalid")
                reason = getattr(error, "reason", error.code)
                span.set_attribute("files.outcome", outcome)
                if not access.recorded:
                    access.record(outcome=outcome, status=error.status, reason=reason)
                raise
            except Exception as error:
                if not access.recorded:
                    access.record(outcome="error", status=500, reason=type(error).__name__)
                raise
            span.set_attribute("files.outcome", access.recorded[0] if access.recorded else "allowed")
            if not access.recorded:
                access.record(outcome="allowed", status=response.status_code)
            return response

    def checked(self, request: Request, access: Access, raw: str) -> HttpResponse:
        parts = paths.parse(raw, allow_empty=self.allow_root)
        found = root_by_name(access.root_name) if params_slug_ok(access.root_name) else None
        if found is None:
            raise paths.EntryNotFound("no_such_root")
        access.root = found
        grants = grants_on(request.user, found)
        if not grants.any:
            raise Denied("no_acl_on_root")
        return self.serve(request, access, found, parts, grants)

    def serve(self, request: Request, access: Access, root: FileRoot, parts, grants: Grants) -> HttpResponse:
        raise NotImplementedError


def params_slug_ok(name: str) -> bool:
    try:
        params.slug(name, name="root")
    except DomainError:
        return False
    return True


class ListView(_AccessView):
    action = Action.LIST

    @extend_schema(
        summary="A page of a directory's entries",
        description=(
            "Entries by name (code point order): name, path, type (file, directory, symlink, other), size, "
            "mtime, readable. Symlinks are shown, never followed. Only what the user's ACLs reach is listed. "
            "`next` is the `after` of the next page; `skipped` counts names that cannot be requested "
            "(control characters, not UTF-8)."
        ),
        parameters=[
            PATH_PARAM,
            OpenApiParameter("after", str, description="The last name of the previous page."),
            OpenApiParameter("limit", int, description=f"1 to {browse.LIST_LIMIT_MAX} (200)."),
        ],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        tags=["files"],
    )
    def get(self, request: Request, root: str) -> HttpResponse:
        return super().get(request, root)

    def serve(self, request, access, root, parts, grants) -> HttpResponse:
        limit = params.integer(
            request.query_params.get("limit"),
            name="limit",
            default=200,
            minimum=1,
            maximum=browse.LIST_LIMIT_MAX,
        )
        after = request.query_params.get("after", "")
        if not grants.can_reach(parts):
            raise Denied("outside_acl")
        result, access.resolved_path = browse.page(root.path, parts, grants, after=after, limit=limit)
        return Response({"root": root.name, **result})


class StatView(_AccessView):
    action = Action.STAT

    @extend_schema(
        summary="One entry: type, size, mtime, readable",
        parameters=[PATH_PARAM],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        tags=["files"],
    )
    def get(self, request: Request, root: str) -> HttpResponse:
        return super().get(request, root)

    def serve(self, request, access, root, parts, grants) -> HttpResponse:
        if not grants.can_reach(parts):
            raise Denied("outside_acl")
        described, access.resolved_path = browse.entry(root.path, parts, grants)
        return Response({"root": root.name, **described})


class DownloadView(_AccessView):
    action = Action.DOWNLOAD
    allow_root = False

    @extend_schema(
        summary="Download a file (Range, ETag, If-Range)",
        description=(
            "A regular file, streamed. One `Range` → 206 with `Content-Range`; past the end → 416; several "
            "ranges or a malformed header → the whole file. `ETag` / `Last-Modified` answer conditional "
            "requests (304). `disposition=inline` shows raster images as they are and text as text/plain "
            "(the portal's preview); anything else is an attachment."
        ),
        parameters=[
            PATH_PARAM,
            OpenApiParameter("disposition", str, enum=["attachment", "inline"]),
            OpenApiParameter("Range", str, OpenApiParameter.HEADER),
            OpenApiParameter("If-Range", str, OpenApiParameter.HEADER),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
            304: OpenApiResponse(description="Not modified"),
            400: OpenApiTypes.OBJECT,
            404: OpenApiTypes.OBJECT,
            412: OpenApiTypes.OBJECT,
            416: OpenApiTypes.OBJECT,
        },
        tags=["files"],
    )
    def get(self, request: Request, root: str) -> HttpResponse:
        return super().get(request, root)

    def serve(self, request, access, root, parts, grants) -> HttpResponse:
        disposition = params.choice(
            request.query_params.get("disposition", "attachment"),
            name="disposition",
            choices={"attachment", "inline"},
        )
        if not grants.can_read(parts):
            raise Denied("outside_acl")
        opened = paths.open_regular_file(root.path, parts)
        access.resolved_path = opened.resolved
        try:
            return download.response_for(request, access, opened, inline=disposition == "inline")
        except BaseException:
            opened.close()
            raise
