def test_the_admins_view_site_link_goes_to_the_portal(client, superuser):
    client.force_login(superuser)
    page = client.get("/admin/")
    assert page.status_code == 200
    assert b'<a href="/portal/">' in page.content
