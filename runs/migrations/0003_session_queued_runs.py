from django.db import migrations, models


def assume_existing_sessions_queued(apps, schema_editor):
    """Sessions from before the flag may have runs queued behind others: keep looking in all of them."""
    apps.get_model("runs", "Session").objects.update(queued_runs=True)


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0002_run_asked_human"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="queued_runs",
            field=models.BooleanField(
                default=False,
                help_text="A run was once queued behind another here (finishing a run looks for it).",
            ),
        ),
        migrations.RunPython(assume_existing_sessions_queued, migrations.RunPython.noop),
    ]
