import factory
from django.contrib.auth import get_user_model

from agents.models import App, Executor
from rbac.models import Department

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


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
