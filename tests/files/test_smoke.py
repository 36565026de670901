from tests.files.conftest import body_of


def test_member_reads_under_reports(files_api, member, member_reads_reports, last_event):
    response = files_api(member, "data", "download", "reports/q1.csv")
    assert response.status_code == 200, response.content
    assert body_of(response) == b"quarter,revenue\nq1,100\n"
    event = last_event()
    assert (event.outcome, event.status, event.username, event.bytes_sent) == ("allowed", 200, "member", 23)


def test_listing(files_api, member, member_reads_reports):
    response = files_api(member, "data", "list", "")
    assert response.status_code == 200, response.content
    assert [e["name"] for e in response.json()["entries"]] == ["reports"]
    response = files_api(member, "data", "list", "reports")
    assert [e["name"] for e in response.json()["entries"]] == ["2026", "q1.csv"]
