from typing import Any

from auditlog.admin import LogEntryAdmin
from auditlog.filters import CIDFilter, ResourceTypeFilter
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from rbac.models import Department, Role, RoleBinding
from rbac.selectors import department_paths

PATH_SEPARATOR = " › "


class PickableForBindings:
    """Whoever may add or change role bindings may search roles, users and departments in the binding
    form's autocomplete (names only), without the right to open their lists: a staff member holding only
    the binding permissions can still fill in a binding."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if super().has_view_permission(request, obj):  # type: ignore[misc]
            return True
        match = request.resolver_match
        if obj is not None or match is None or match.url_name != "autocomplete":
            return False
        source = (request.GET.get("app_label"), request.GET.get("model_name"))
        return source == ("rbac", "rolebinding") and any(
            request.user.has_perm(f"rbac.{verb}_rolebinding") for verb in ("add", "change")
        )


class ChildDepartmentInline(admin.TabularInline):
    model = Department
    fk_name = "parent"
    fields = ["name", "slug"]
    readonly_fields = ["name", "slug"]
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "Sub-departments"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Department)
class DepartmentAdmin(PickableForBindings, admin.ModelAdmin):
    list_display = ["name", "full_path", "slug", "parent", "created_at"]
    list_select_related = ["parent"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["parent", "members"]
    inlines = [ChildDepartmentInline]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        page = list(changelist.result_list)  # evaluated once; the page's rows keep their paths
        paths = department_paths([department.pk for department in page])
        for department in page:
            department.path_names = paths.get(department.pk, [department.name])
        return changelist

    @admin.display(description="path")
    def full_path(self, department: Department) -> str:
        return PATH_SEPARATOR.join(getattr(department, "path_names", [department.name]))


class RoleBindingInline(admin.TabularInline):
    model = RoleBinding
    fk_name = "role"
    fields = ["user", "department", "include_descendants", "expires_at", "created_by"]
    readonly_fields = ["created_by"]
    autocomplete_fields = ["user", "department"]
    extra = 0


@admin.register(Role)
class RoleAdmin(PickableForBindings, admin.ModelAdmin):
    list_display = ["name", "slug", "description", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [RoleBindingInline]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Bindings and grants added on the role's page are made by whoever saved it.
        for instance in formset.save(commit=False):
            if instance.pk is None and hasattr(instance, "created_by_id"):
                instance.created_by = request.user
            instance.save()
        for instance in formset.deleted_objects:
            instance.delete()
        formset.save_m2m()


class ExpiredFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Active"), ("yes", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        lapsed = Q(expires_at__isnull=False, expires_at__lte=timezone.now())
        if self.value() == "yes":
            return queryset.filter(lapsed)
        if self.value() == "no":
            return queryset.exclude(lapsed)
        return queryset


@admin.register(RoleBinding)
class RoleBindingAdmin(admin.ModelAdmin):
    list_display = ["role", "user", "department", "include_descendants", "expires_at", "created_by"]
    list_select_related = ["role", "user", "department", "created_by"]
    list_filter = [
        "role",
        ("user", admin.EmptyFieldListFilter),
        ("department", admin.EmptyFieldListFilter),
        ExpiredFilter,
    ]
    search_fields = ["role__name", "role__slug", "user__username", "department__name", "department__slug"]
    autocomplete_fields = ["role", "user", "department"]
    fields = ["role", "user", "department", "include_descendants", "expires_at", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: RoleBinding, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(PickableForBindings, auth_admin.UserAdmin):
    pass


# auditlog's read-only LogEntry admin, filterable by who made the change as well.
admin.site.unregister(LogEntry)


class ActorFilter(admin.SimpleListFilter):
    title = "actor"
    parameter_name = "actor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        actors = LogEntry.objects.filter(actor__isnull=False).values_list("actor_id", "actor__username")
        return [(str(pk), name) for pk, name in actors.distinct().order_by("actor__username")[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(actor_id=value) if value and value.isascii() and value.isdigit() else queryset


@admin.register(LogEntry)
class AuditLogEntryAdmin(LogEntryAdmin):
    list_filter = ["action", ResourceTypeFilter, ActorFilter, CIDFilter]


# DRF's own registration lists every key in clear; ours lists whose token it is and when it was made. Staff
# can still revoke one (delete); the key is shown only once, to its user, by POST /api/auth/token/.
admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ApiTokenAdmin(TokenAdmin):
    list_display = ("user", "created")
    list_select_related = ("user",)
