"""Each app's one prompt text becomes its version 1, active from now (the text field then goes, 0006).

Backwards, an app's active version's text goes back into the field."""

from django.db import migrations

REASON = "Imported from the app's system_prompt field."


def forwards(apps, schema_editor):
    App = apps.get_model("agents", "App")
    PromptVersion = apps.get_model("agents", "PromptVersion")
    PromptActivation = apps.get_model("agents", "PromptActivation")
    for app in App.objects.exclude(system_prompt=""):
        if PromptVersion.objects.filter(app=app).exists():
            continue  # migrated forward before, back to 0004 (which kept the versions), and forward again
        version = PromptVersion.objects.create(app=app, number=1, text=app.system_prompt, message=REASON)
        PromptActivation.objects.create(app=app, version=version, reason=REASON)
        App.objects.filter(pk=app.pk).update(active_prompt=version)


def backwards(apps, schema_editor):
    App = apps.get_model("agents", "App")
    PromptVersion = apps.get_model("agents", "PromptVersion")
    for app in App.objects.exclude(active_prompt=None):
        text = PromptVersion.objects.get(pk=app.active_prompt_id).text
        App.objects.filter(pk=app.pk).update(system_prompt=text)


class Migration(migrations.Migration):
    dependencies = [("agents", "0004_app_store_grants_prompts_projects")]

    operations = [migrations.RunPython(forwards, backwards)]
