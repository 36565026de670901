"""The change audit of what roles allow: grants, prompt activations and projects are django-auditlog
entries with who, when, before and after. Runs and queue entries are not audited (the run path stays
free of audit queries); a run records its own prompt version and settings."""

from auditlog.registry import auditlog

from agents.models import AppGrant, Project, PromptActivation


def register() -> None:
    auditlog.register(AppGrant)
    auditlog.register(PromptActivation)
    auditlog.register(Project)
