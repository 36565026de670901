"""The change audit of who holds which role: every create, update and delete of a role, a binding or a
department (its members included) is a django-auditlog entry with who, when, before and after."""

from auditlog.registry import auditlog

import core.audit  # noqa: F401 - connects the receiver that stamps each entry's actor and address
from rbac.models import Department, Role, RoleBinding


def register() -> None:
    auditlog.register(Role)
    auditlog.register(RoleBinding)
    auditlog.register(Department, m2m_fields={"members"})
