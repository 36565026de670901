from django.core.management import call_command


def test_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/me/" in text
    assert "/api/auth/token/" in text


def test_schema_and_docs_need_a_signed_in_user(client, api_as, member):
    assert client.get("/api/schema/").status_code == 401
    docs = client.get("/api/docs/")
    assert docs.status_code == 302
    assert docs["Location"].startswith("/admin/login/")
    assert api_as(member).get("/api/schema/").status_code == 200
    client.force_login(member)
    assert client.get("/api/docs/").status_code == 200
