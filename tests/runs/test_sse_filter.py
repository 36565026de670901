from runs.sse import _filter_blocks


def block(seq: int, event: str = "message.delta") -> str:
    return f"event: {event}\nid: run-abc:{seq}\ndata: {{}}"


def test_duplicates_and_replays_below_the_last_sent_seq_are_dropped():
    text = "\n\n".join([block(1), block(2), block(1), block(3)]) + "\n\n"
    kept, last, finished = _filter_blocks(text, 0)
    assert kept.count("id: run-abc:1") == 1
    assert last == 3
    assert not finished
    again, last, _ = _filter_blocks(text, last)
    assert "id:" not in again


def test_blocks_without_an_id_pass_and_the_finish_is_seen():
    text = ":" + " " * 10 + "\n\nevent: stream-open\ndata:\n\n" + block(4, "run.finished") + "\n\n"
    kept, last, finished = _filter_blocks(text, 3)
    assert "stream-open" in kept
    assert finished
    assert last == 4
