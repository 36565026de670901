"""The SSE parser yields the same messages however the byte stream is chunked, with LF or CRLF endings."""

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from agents.sse import SseMessage, iter_sse

STREAM = (
    b": keep-alive\n\n"
    b'id: 1\ndata: {"seq":1}\n\n'
    b"event: note\ndata: line one\ndata: line two\n\n"
    b": only a comment\n\n"
    b'id: 3\ndata:{"seq":3,"text":"caf\xc3\xa9"}\n\n'
    b"id: 4\n"  # an incomplete message at the end is not yielded
)
EXPECTED = [
    SseMessage("1", None, '{"seq":1}'),
    SseMessage(None, "note", "line one\nline two"),
    SseMessage("3", None, '{"seq":3,"text":"café"}'),
]


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in pairwise(points)]


def test_whole_stream():
    assert list(iter_sse([STREAM])) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_any_chunking_gives_the_same_messages(cuts):
    assert list(iter_sse(chunked(STREAM, cuts))) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_crlf_line_endings_split_anywhere(cuts):
    assert list(iter_sse(chunked(STREAM.replace(b"\n", b"\r\n"), cuts))) == EXPECTED
