"""Prompt versions in the admin: the history is read-only, a new version is saved by the service from the
app's page, activating asks for a reason, and nobody changes or deletes a version or an activation. Also
the data migration that turned each app's ``system_prompt`` into its version 1."""

import pytest
from django import forms
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from agents.models import Action, PromptActivation, PromptVersion
from agents.prompts import prompt_version_create
from tests.factories import AppFactory, grant


@pytest.fixture
def app(db):
    return AppFactory(slug="writer")


@pytest.fixture
def versions(app, owner):
    return [prompt_version_create(app=app, text=f"You are v{n}.", author=owner) for n in (1, 2, 3)]


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def unchanged_form(response) -> dict[str, object]:
    """What a browser would post back untouched: the app's form, its inlines' management and forms."""
    every = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        every += [inline.formset.management_form, *inline.formset.forms]
    data: dict[str, object] = {}
    for form in every:
        for name, field in form.fields.items():
            value = form[name].value()
            if isinstance(field, forms.BooleanField):
                if value:
                    data[form.add_prefix(name)] = "on"
            elif value is not None and not isinstance(field, forms.FileField):
                data[form.add_prefix(name)] = value
    return data


def test_the_apps_page_lists_its_versions_read_only_with_the_active_one(admin_client, app, versions):
    page = admin_client.get(f"/admin/agents/app/{app.pk}/change/")
    assert page.status_code == 200
    history, new = page.context["inline_admin_formsets"]
    assert (history.has_change_permission, history.has_delete_permission) == (False, False)
    assert len(history.formset.forms) == 3
    assert len(new.formset.initial_forms) == 0
    text = page.content.decode()
    assert "You are v3." in text  # the preview
    assert 'name="prompt_versions-0-text"' not in text  # shown, not editable


def test_the_apps_page_saves_the_next_version_through_the_service(admin_client, app, versions, superuser):
    url = f"/admin/agents/app/{app.pk}/change/"
    data = unchanged_form(admin_client.get(url))
    data.update({"prompt_versions-2-0-text": "You are v4.", "prompt_versions-2-0-message": "from the admin"})
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    added = PromptVersion.objects.get(app=app, number=4)
    assert (added.text, added.message, added.author) == ("You are v4.", "from the admin", superuser)
    assert PromptVersion.objects.filter(app=app).count() == 4
    app.refresh_from_db()
    assert app.active_prompt.number == 1  # saving is not activating


def test_the_apps_page_refuses_a_bad_new_version(admin_client, app, versions):
    url = f"/admin/agents/app/{app.pk}/change/"
    data = unchanged_form(admin_client.get(url))
    data.update({"prompt_versions-2-0-text": "ok", "prompt_versions-2-0-parameters": "[1]"})
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "Enter a JSON object" in response.content.decode()
    assert PromptVersion.objects.filter(app=app).count() == 3


def test_the_activate_action_asks_for_a_reason_then_activates(admin_client, app, versions, superuser):
    chosen = {"action": "activate_version", "_selected_action": [str(versions[2].pk)]}
    asked = admin_client.post("/admin/agents/promptversion/", chosen)
    assert asked.status_code == 200
    assert 'name="reason"' in asked.content.decode()
    assert PromptActivation.objects.filter(app=app).count() == 1

    done = admin_client.post("/admin/agents/promptversion/", {**chosen, "apply": "1", "reason": "Try v3."})

    assert done.status_code == 302
    app.refresh_from_db()
    assert app.active_prompt == versions[2]
    move = PromptActivation.objects.filter(app=app).order_by("-id").first()
    assert (move.version, move.previous, move.reason, move.activated_by) == (
        versions[2],
        versions[0],
        "Try v3.",
        superuser,
    )


def test_the_activate_action_without_a_reason_asks_again(admin_client, app, versions):
    chosen = {"action": "activate_version", "_selected_action": [str(versions[1].pk)], "apply": "1"}
    again = admin_client.post("/admin/agents/promptversion/", {**chosen, "reason": ""})
    assert again.status_code == 200
    assert "This field is required" in again.content.decode()
    assert PromptActivation.objects.filter(app=app).count() == 1


def test_the_activate_action_takes_exactly_one_version(admin_client, app, versions):
    both = [str(versions[1].pk), str(versions[2].pk)]
    response = admin_client.post(
        "/admin/agents/promptversion/",
        {"action": "activate_version", "_selected_action": both, "apply": "1", "reason": "r"},
        follow=True,
    )
    assert "Select exactly one version" in response.content.decode()
    app.refresh_from_db()
    assert app.active_prompt == versions[0]


def test_activating_the_active_version_from_the_admin_says_so(admin_client, app, versions):
    response = admin_client.post(
        "/admin/agents/promptversion/",
        {"action": "activate_version", "_selected_action": [versions[0].pk], "apply": "1", "reason": "r"},
        follow=True,
    )
    assert "already the app" in response.content.decode()
    assert PromptActivation.objects.filter(app=app).count() == 1


def test_staff_without_prompt_edit_on_the_app_cannot_activate(client, app, versions, member):
    member.is_staff = True
    member.save()
    member.user_permissions.add(*_view_permissions())
    grant(member, Action.PROMPT_EDIT, AppFactory(slug="other"))  # the action shows, this app refuses
    client.force_login(member)
    response = client.post(
        "/admin/agents/promptversion/",
        {"action": "activate_version", "_selected_action": [versions[2].pk], "apply": "1", "reason": "r"},
        follow=True,
    )
    assert "You may not edit the prompt" in response.content.decode()
    app.refresh_from_db()
    assert app.active_prompt == versions[0]


def test_staff_may_add_versions_only_to_apps_they_may_edit_the_prompt_of(client, app, versions, member):
    from django.contrib.auth.models import Permission

    member.is_staff = True
    member.save()
    codenames = ["change_app", "view_app", "add_promptversion", "view_promptversion"]
    member.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(member)
    url = f"/admin/agents/app/{app.pk}/change/"
    assert len(client.get(url).context["inline_admin_formsets"]) == 1  # the history only
    grant(member, Action.PROMPT_EDIT, app)
    assert len(client.get(url).context["inline_admin_formsets"]) == 2


def _view_permissions():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(codename__in=["view_promptversion", "view_promptactivation"])


@pytest.mark.parametrize("model", ["promptversion", "promptactivation"])
def test_the_admin_refuses_changing_or_deleting_versions_and_activations_even_to_a_superuser(
    admin_client, app, versions, model
):
    obj = versions[1] if model == "promptversion" else PromptActivation.objects.get(app=app)
    base = f"/admin/agents/{model}/{obj.pk}"
    assert admin_client.get(f"{base}/change/").status_code == 200  # a read-only page
    assert admin_client.post(f"{base}/change/", {"text": "changed", "reason": "x"}).status_code == 403
    assert admin_client.get(f"{base}/delete/").status_code == 403
    assert admin_client.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get(f"/admin/agents/{model}/add/").status_code == 403
    assert PromptVersion.objects.get(pk=versions[1].pk).text == "You are v2."
    assert PromptActivation.objects.filter(app=app).count() == 1


def test_the_bulk_delete_action_is_not_offered(admin_client, versions):
    page = admin_client.get("/admin/agents/promptversion/")
    assert page.status_code == 200
    assert "delete_selected" not in page.content.decode()
    assert "activate_version" in page.content.decode()


@pytest.mark.parametrize(
    "path", ["/admin/agents/promptversion/?app__id__exact=1", "/admin/agents/promptactivation/"]
)
def test_the_lists_render(admin_client, versions, path):
    assert admin_client.get(path).status_code == 200


BEFORE = [("agents", "0004_app_store_grants_prompts_projects")]
AFTER = [("agents", "0006_remove_app_system_prompt")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_turns_a_system_prompt_into_an_active_version_1_and_back():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = _migrate(BEFORE)
        App = old.get_model("agents", "App")
        App.objects.create(slug="legacy", name="Legacy", system_prompt="You are the old prompt.")
        App.objects.create(slug="blank", name="Blank", system_prompt="")

        new = _migrate(AFTER)

        App = new.get_model("agents", "App")
        legacy = App.objects.get(slug="legacy")
        version = new.get_model("agents", "PromptVersion").objects.get(pk=legacy.active_prompt_id)
        assert (version.number, version.text, version.app_id) == (1, "You are the old prompt.", legacy.pk)
        activation = new.get_model("agents", "PromptActivation").objects.get(app=legacy)
        assert (activation.version_id, activation.previous_id) == (version.pk, None)
        assert App.objects.get(slug="blank").active_prompt_id is None

        back = _migrate(BEFORE)

        restored = back.get_model("agents", "App").objects.get(slug="legacy")
        assert restored.system_prompt == "You are the old prompt."

        again = _migrate(AFTER)  # 0004 kept the versions: forward again adds none

        versions = again.get_model("agents", "PromptVersion").objects.filter(app__slug="legacy")
        assert list(versions.values_list("number", flat=True)) == [1]
    finally:
        _forget_everything(_migrate(BEFORE))  # 0005 would number the old apps' versions again
        _migrate(leaves)


def _forget_everything(state) -> None:
    state.get_model("agents", "PromptActivation").objects.all().delete()
    state.get_model("agents", "App").objects.update(active_prompt=None)
    state.get_model("agents", "PromptVersion").objects.all().delete()
    state.get_model("agents", "App").objects.all().delete()
