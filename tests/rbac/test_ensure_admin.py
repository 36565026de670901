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


def test_the_demo_password_can_be_allowed_explicitly(db, settings):
    settings.DEBUG = False
    call_command("ensure_admin", "--allow-demo-password")
    assert get_user_model().objects.get(username="admin").check_password("admin")


def test_a_real_password_needs_no_flag_with_debug_off(db, settings):
    settings.DEBUG = False
    call_command("ensure_admin", "--password", "a-long-real-password")
    assert get_user_model().objects.get(username="admin").check_password("a-long-real-password")
