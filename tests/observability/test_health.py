def test_healthz_answers_without_touching_dependencies(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "migrations", "redis"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_is_503_when_redis_is_unreachable(client, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_readyz_skips_redis_when_not_configured(client, db, settings):
    settings.REDIS_URL = ""
    body = client.get("/readyz").json()
    assert "redis" not in body["checks"]


def test_health_endpoints_refuse_writes(client, db):
    assert client.post("/healthz").status_code == 405
