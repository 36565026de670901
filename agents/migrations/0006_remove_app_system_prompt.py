from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("agents", "0005_prompt_versions_from_system_prompt")]

    operations = [
        migrations.RemoveField(model_name="app", name="system_prompt"),
    ]
