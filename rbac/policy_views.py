"""The policy API under /api/rbac/: roles, their bindings and the department tree, for admins only (the
admin's rules: a superuser, or staff with the model permission, ``view_*`` for reads)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from core import params
from core.permissions import AdminModelPermissions
from rbac import services
from rbac.models import Department, Role, RoleBinding
from rbac.policy_serializers import BindingSerializer, DepartmentSerializer, RoleSerializer

NOT_FOUND = OpenApiResponse(description="No such record")
INVALID = OpenApiResponse(description="Invalid input: detail names each field")
IN_USE = OpenApiResponse(description="Still referred to (sub-departments, projects), or a duplicate")
FILTER_MAX = 150


class PolicyView(generics.GenericAPIView):
    permission_classes = [AdminModelPermissions]

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    def valid(self, instance: Any = None, partial: bool = False) -> dict[str, Any]:
        serializer = self.get_serializer(instance, data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def shown(self, instance: Any, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(instance).data, status=status_code)


class RoleListView(generics.ListAPIView, PolicyView):
    queryset = Role.objects.order_by("slug")
    serializer_class = RoleSerializer

    @extend_schema(summary="Roles", tags=["policy"])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Create a role", responses={201: RoleSerializer, 400: INVALID}, tags=["policy"])
    def post(self, request: Request) -> Response:
        role = services.role_create(actor=request.user, **self.valid())
        return self.shown(role, status.HTTP_201_CREATED)


class RoleDetailView(PolicyView):
    queryset = Role.objects.all()
    serializer_class = RoleSerializer
    lookup_field = "slug"

    @extend_schema(summary="One role", responses={200: RoleSerializer, 404: NOT_FOUND}, tags=["policy"])
    def get(self, request: Request, slug: str) -> Response:
        return self.shown(self.get_object())

    @extend_schema(
        summary="Change a role",
        responses={200: RoleSerializer, 400: INVALID, 404: NOT_FOUND},
        tags=["policy"],
    )
    def patch(self, request: Request, slug: str) -> Response:
        role = self.get_object()
        changes = self.valid(role, partial=True)
        return self.shown(services.role_update(actor=request.user, role=role, changes=changes))

    @extend_schema(
        summary="Delete a role with its bindings and grants",
        responses={204: None, 404: NOT_FOUND},
        tags=["policy"],
    )
    def delete(self, request: Request, slug: str) -> Response:
        services.role_delete(actor=request.user, role=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def bindings_filtered(query: Any) -> QuerySet[RoleBinding]:
    bindings = RoleBinding.objects.select_related("role", "user", "department", "created_by")
    if query.get("role"):
        bindings = bindings.filter(role__slug=params.text(query["role"], name="role", max_length=FILTER_MAX))
    if query.get("user"):
        username = params.text(query["user"], name="user", max_length=FILTER_MAX)
        bindings = bindings.filter(user__username=username)
    if query.get("department"):
        slug = params.text(query["department"], name="department", max_length=FILTER_MAX)
        bindings = bindings.filter(department__slug=slug)
    if query.get("expired"):
        expired = params.choice(query["expired"], name="expired", choices={"true", "false"}) == "true"
        lapsed = Q(expires_at__isnull=False, expires_at__lte=timezone.now())
        bindings = bindings.filter(lapsed if expired else ~lapsed)
    return bindings.order_by("role__slug", "id")


class BindingListView(generics.ListAPIView, PolicyView):
    queryset = RoleBinding.objects.all()
    serializer_class = BindingSerializer

    def get_queryset(self) -> QuerySet[RoleBinding]:
        return bindings_filtered(self.request.query_params)

    @extend_schema(
        summary="Role bindings",
        parameters=[
            OpenApiParameter("role", str, description="Only bindings of this role (slug)."),
            OpenApiParameter("user", str, description="Only bindings to this user (username)."),
            OpenApiParameter("department", str, description="Only bindings to this department (slug)."),
            OpenApiParameter(
                "expired", str, enum=["true", "false"], description="Only expired / active ones."
            ),
        ],
        responses={200: BindingSerializer(many=True), 400: INVALID},
        tags=["policy"],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Bind a role to a user or a department",
        responses={201: BindingSerializer, 400: INVALID},
        tags=["policy"],
    )
    def post(self, request: Request) -> Response:
        binding = services.binding_create(actor=request.user, **self.valid())
        return self.shown(binding, status.HTTP_201_CREATED)


class BindingDetailView(PolicyView):
    queryset = RoleBinding.objects.select_related("role", "user", "department", "created_by")
    serializer_class = BindingSerializer

    @extend_schema(summary="One binding", responses={200: BindingSerializer, 404: NOT_FOUND}, tags=["policy"])
    def get(self, request: Request, pk: int) -> Response:
        return self.shown(self.get_object())

    @extend_schema(
        summary="Change a binding",
        responses={200: BindingSerializer, 400: INVALID, 404: NOT_FOUND},
        tags=["policy"],
    )
    def patch(self, request: Request, pk: int) -> Response:
        binding = self.get_object()
        changes = self.valid(binding, partial=True)
        return self.shown(services.binding_update(actor=request.user, binding=binding, changes=changes))

    @extend_schema(summary="Delete a binding", responses={204: None, 404: NOT_FOUND}, tags=["policy"])
    def delete(self, request: Request, pk: int) -> Response:
        services.binding_delete(actor=request.user, binding=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class DepartmentListView(generics.ListAPIView, PolicyView):
    queryset = Department.objects.select_related("parent").prefetch_related("members").order_by("slug")
    serializer_class = DepartmentSerializer

    @extend_schema(summary="Departments", tags=["policy"])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a department", responses={201: DepartmentSerializer, 400: INVALID}, tags=["policy"]
    )
    def post(self, request: Request) -> Response:
        department = services.department_create(actor=request.user, **self.valid())
        return self.shown(department, status.HTTP_201_CREATED)


class DepartmentDetailView(PolicyView):
    queryset = Department.objects.select_related("parent").prefetch_related("members")
    serializer_class = DepartmentSerializer
    lookup_field = "slug"

    @extend_schema(
        summary="One department", responses={200: DepartmentSerializer, 404: NOT_FOUND}, tags=["policy"]
    )
    def get(self, request: Request, slug: str) -> Response:
        return self.shown(self.get_object())

    @extend_schema(
        summary="Change, move (parent) or re-staff (members) a department",
        responses={200: DepartmentSerializer, 400: INVALID, 404: NOT_FOUND},
        tags=["policy"],
    )
    def patch(self, request: Request, slug: str) -> Response:
        department = self.get_object()
        changes = self.valid(department, partial=True)
        members = changes.pop("members", None)
        services.department_update(
            actor=request.user, department=department, changes=changes, members=members
        )
        return self.shown(get_object_or_404(self.get_queryset(), pk=department.pk))

    @extend_schema(
        summary="Delete a department (refused while it has sub-departments or projects)",
        responses={204: None, 404: NOT_FOUND, 409: IN_USE},
        tags=["policy"],
    )
    def delete(self, request: Request, slug: str) -> Response:
        services.department_delete(actor=request.user, department=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("rbac/roles/", RoleListView.as_view(), name="policy-roles"),
    path("rbac/roles/<slug:slug>/", RoleDetailView.as_view(), name="policy-role"),
    path("rbac/bindings/", BindingListView.as_view(), name="policy-bindings"),
    path("rbac/bindings/<int:pk>/", BindingDetailView.as_view(), name="policy-binding"),
    path("rbac/departments/", DepartmentListView.as_view(), name="policy-departments"),
    path("rbac/departments/<slug:slug>/", DepartmentDetailView.as_view(), name="policy-department"),
]
