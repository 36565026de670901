"""The file browser in the browser: a member browses a root, previews a text file and downloads one; what
they may not read is not shown; an outsider sees no roots, and a deep link to a root is a not-found state."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from files.models import FileAccessEvent
from tests.browser.conftest import check_accessibility, sign_in
from tests.factories import FileRootFactory, UserFactory, file_acl

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared(transactional_db, tmp_path):
    base = tmp_path / "shared"
    (base / "reports" / "2026").mkdir(parents=True)
    (base / "secret").mkdir()
    (base / "reports" / "summary.md").write_text(
        "# Summary\n\nRevenue grew 8 %.\n季度总结\n", encoding="utf-8"
    )
    (base / "reports" / "q3.csv").write_bytes(b"quarter,revenue\nq3,1200\n")
    (base / "reports" / "2026" / "notes.txt").write_text("notes\n")
    (base / "secret" / "keys.txt").write_text("top secret\n")
    root = FileRootFactory(name="shared", path=str(base), description="Reports for the research team")
    member = UserFactory(username="member")
    file_acl(member, root, "reports", "read")
    return member


def test_a_member_browses_previews_and_downloads(browsing, shared):
    browsing_ = browsing()
    sign_in(browsing_, shared)
    page = browsing_.page()
    page.goto("/portal/files/")
    page.get_by_role("link", name="shared").click()
    rows = page.locator("#files-rows tr")
    expect(rows).to_have_count(1)  # secret/ is not shown
    expect(rows.first).to_contain_text("reports/")
    page.get_by_role("link", name="reports/").click()
    expect(page).to_have_url("/portal/files/?root=shared&path=reports")
    expect(page.locator("#files-crumbs")).to_contain_text("shared")
    expect(rows).to_have_count(3)
    page.get_by_role("button", name="Preview summary.md").click()
    expect(page.locator("#files-preview-text")).to_contain_text("Revenue grew 8 %.")
    expect(page.locator("#files-preview-text")).to_contain_text("季度总结")
    check_accessibility(page)
    page.screenshot(path=str(ROOT / "docs" / "screenshots" / "files.png"), full_page=False)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download q3.csv").click()
    assert Path(download.value.path()).read_bytes() == b"quarter,revenue\nq3,1200\n"
    assert download.value.suggested_filename == "q3.csv"
    page.go_back()  # back in history: the root's top folder again
    expect(rows).to_have_count(1)
    actions = list(FileAccessEvent.objects.order_by("id").values_list("action", "outcome", "requested_path"))
    assert ("download", "allowed", "reports/q3.csv") in actions
    assert ("download", "allowed", "reports/summary.md") in actions  # the preview, audited as a read


def test_an_outsider_sees_no_roots_and_a_deep_link_is_not_found(browsing, shared):
    outsider = UserFactory(username="outsider")
    browsing_ = browsing()
    sign_in(browsing_, outsider)
    page = browsing_.page()
    page.goto("/portal/files/")
    expect(page.locator("#files-status")).to_have_text("No file roots are shared with you.")
    check_accessibility(page)
    page.goto("/portal/files/?root=shared&path=secret")
    expect(page.locator("#files-status")).to_have_text("Not found, or not shared with you.")
    expect(page.locator("#files-listing")).to_be_hidden()
