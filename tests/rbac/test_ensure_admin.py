import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command


def test_creates_the_admin_once(db, settings, capsys):
    settings.DEBUG = True
    call_command("ensure_admin")
    call_command("ensure_admin")
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("admin")
    out = capsys.readouterr().out
    assert "Created admin user: admin / admin" in out
    assert "exists" in out


def test_refuses_the_demo_password_in_production(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("ensure_admin")
    assert not get_user_model().objects.exists()
