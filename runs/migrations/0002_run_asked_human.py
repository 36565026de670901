from django.db import migrations, models


def mark_runs_that_asked(apps, schema_editor):
    """Runs that already have questions asked: finishing them must still close those questions."""
    Run = apps.get_model("runs", "Run")
    HumanLoopRequest = apps.get_model("runs", "HumanLoopRequest")
    Run.objects.filter(pk__in=HumanLoopRequest.objects.values("run_id")).update(asked_human=True)


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="asked_human",
            field=models.BooleanField(
                default=False,
                help_text="The run has asked a person at least once (finishing closes its questions).",
            ),
        ),
        migrations.RunPython(mark_runs_that_asked, migrations.RunPython.noop),
    ]
