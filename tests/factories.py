import functools
import uuid

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from agents.models import Action, App, AppGrant, AppSetting, Executor, Project, PromptVersion
from files.models import FileACL, FileRoot
from rbac.models import Department, Role, RoleBinding
from runs.models import Run, Session

PASSWORD = "correct-horse-battery-staple"


def password_hash(raw: str) -> str:
    """A real hash by the settings' first hasher (the processes the tests start verify it), made once per
    password and hasher: PBKDF2's iterations cost half a second of CPU, and a user each made most of the
    suite's time. Users of one password then share a salt; nothing tests that two users' hashes differ."""
    return _password_hash(raw, settings.PASSWORD_HASHERS[0])


@functools.cache
def _password_hash(raw: str, hasher: str) -> str:
    return make_password(raw)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD, transform=password_hash)

    @factory.post_generation
    def may_use_every_app(self, create, extracted, **kwargs):
        wanted = EVERY_USER_MAY_USE_EVERY_APP["on"] if extracted is None else extracted
        if create and wanted:
            bind_use_every_app(self)


# Tests about runs rather than access switch this on (the ``every_user_may_use_every_app`` fixture): each
# user the factory makes then holds a role granted app.use on every app.
EVERY_USER_MAY_USE_EVERY_APP = {"on": False}
USE_EVERY_APP_ROLE = "tests-use-every-app"


def bind_use_every_app(user) -> None:
    role, created = Role.objects.get_or_create(slug=USE_EVERY_APP_ROLE, defaults={"name": "Uses every app"})
    if created:
        AppGrant.objects.create(role=role, action=Action.USE, app=None)
    RoleBinding.objects.get_or_create(role=role, user=user)


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Department {n}")
    slug = factory.Sequence(lambda n: f"dept-{n}")

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        if create and extracted:
            self.members.add(*extracted)


class ExecutorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Executor
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"executor-{n}")
    base_url = factory.Sequence(lambda n: f"http://executor-{n}:8100")
    token = factory.Sequence(lambda n: f"secret-token-{n:04d}-do-not-show")


class AppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = App
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"app-{n}")
    name = factory.LazyAttribute(lambda a: a.slug.replace("-", " ").title())
    executor = factory.SubFactory(ExecutorFactory)
    agent_kind = "scripted"
    playbook = "demo"


class RoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Role
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Role {n}")
    slug = factory.Sequence(lambda n: f"role-{n}")


class RoleBindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RoleBinding

    role = factory.SubFactory(RoleFactory)


class AppGrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AppGrant

    role = factory.SubFactory(RoleFactory)
    action = Action.USE


class PromptVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptVersion

    app = factory.SubFactory(AppFactory)
    number = factory.Sequence(lambda n: n + 1)
    text = factory.Sequence(lambda n: f"You are prompt number {n}.")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        django_get_or_create = ["slug"]

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda p: p.slug.replace("-", " ").title())
    department = factory.SubFactory(DepartmentFactory)


def grant(
    subject, action: str = Action.USE, app: App | None = None, *, include_descendants: bool = False, **binding
) -> AppGrant:
    """Let ``subject`` (a user or a department) do ``action`` on ``app`` (every app when None), through a
    role of its own: the shortest honest way for a test to give someone access."""
    role = RoleFactory()
    if isinstance(subject, Department):
        RoleBindingFactory(role=role, department=subject, include_descendants=include_descendants, **binding)
    else:
        RoleBindingFactory(role=role, user=subject, **binding)
    return AppGrantFactory(role=role, action=action, app=app)


class FileRootFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FileRoot
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"root-{n}")
    path = "/nonexistent"


def file_acl(subject, root: FileRoot, path_prefix: str = "", permission: str = "read") -> FileACL:
    """Let ``subject`` (a user or a department) ``permission`` under ``path_prefix`` of ``root``, through a
    role of its own."""
    role = RoleFactory()
    if isinstance(subject, Department):
        RoleBindingFactory(role=role, department=subject)
    else:
        RoleBindingFactory(role=role, user=subject)
    return FileACL.objects.create(root=root, path_prefix=path_prefix, role=role, permission=permission)


def staff_with(*permissions: str, username: str = "clerk"):
    """A staff user (not a superuser) holding exactly these Django permissions ("rbac.add_rolebinding")."""
    from django.contrib.auth.models import Permission

    user = UserFactory(username=username, is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".")
        permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        user.user_permissions.add(permission)
    return get_user_model().objects.get(pk=user.pk)  # fresh: no cached permissions


class AppSettingFactory(factory.django.DjangoModelFactory):
    """One layer of an app's settings; give ``project`` with scope "project", ``user`` with "user"."""

    class Meta:
        model = AppSetting

    app = factory.SubFactory(AppFactory)
    scope = "app"
    values = factory.LazyFunction(dict)


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    user = factory.SubFactory(UserFactory)
    app = factory.SubFactory(AppFactory)


class RunFactory(factory.django.DjangoModelFactory):
    """A run row alone (no queue entry, no events, no executor called): for lists and pages that only
    read runs. ``created_at`` may be given: it is written after the insert, which ``auto_now_add`` owns."""

    class Meta:
        model = Run

    app = factory.SubFactory(AppFactory)
    user = factory.SubFactory(UserFactory)
    session = factory.SubFactory(
        SessionFactory, app=factory.SelfAttribute("..app"), user=factory.SelfAttribute("..user")
    )
    executor = factory.LazyAttribute(lambda run: run.app.executor)
    input = factory.Sequence(lambda n: {"message": f"Question number {n}"})
    trace_id = factory.LazyFunction(lambda: uuid.uuid4().hex)

    @classmethod
    def _create(cls, model_class, *args, created_at=None, **kwargs):
        run = super()._create(model_class, *args, **kwargs)
        if created_at is not None:
            model_class.objects.filter(pk=run.pk).update(created_at=created_at)
            run.created_at = created_at
        return run
