"""core.params.moment: ISO 8601 dates and datetimes, strictly."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core import params


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T09:30", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)),
        ("2026-12-01T09:30:15Z", datetime(2026, 12, 1, 9, 30, 15, tzinfo=UTC)),
        ("2026-12-01T09:30:15.5+08:00", datetime(2026, 12, 1, 1, 30, 15, 500_000, tzinfo=UTC)),
        ("2026-12-01T09:30-05:00", datetime(2026, 12, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))),
    ],
)
def test_a_moment_is_an_aware_datetime(raw, expected):
    value = params.moment(raw, name="at")
    assert value == expected
    assert value.tzinfo is not None


def test_a_moment_without_an_offset_is_in_the_server_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    assert params.moment("2026-12-01", name="at") == datetime(2026, 11, 30, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw", ["", "today", "2026-1-01", "2026-12-01T9:30", "2026-12-01t09:30", "2026-W48", "2026-335", "١٢"]
)
def test_anything_else_is_refused_naming_the_parameter(raw):
    with pytest.raises(params.InvalidParameter) as refused:
        params.moment(raw, name="created_after")
    assert list(refused.value.detail) == ["created_after"]
