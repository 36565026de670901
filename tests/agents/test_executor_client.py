"""The executor client against a real executor process: retries, error classes, attempts, streams."""

import json
import threading
import time

import pytest
from structlog.testing import capture_logs

from agents.executor_client import ExecutorClient, ExecutorConfig, ExecutorError
from tests.executor_support import RecordingServer, free_port, start_body


def drain(events, into):
    for event in events:
        into.append(event)


def start(client, playbook="instant", run_input=None, **kwargs):
    body = start_body(playbook=playbook, run_input=run_input)
    reply = client.start_run(
        run_id=body["run_id"],
        app=body["app"],
        agent=body["agent"],
        prompt=body["prompt"],
        input=body["input"],
        **kwargs,
    )
    return body["run_id"], reply


def test_transient_503s_are_retried_until_success_and_the_attempts_are_visible(executor):
    executor.faults(fail={"count": 2, "status": 503, "path_prefix": "/v1/health"})
    with capture_logs() as logs:
        reply = executor.client(retries=3).health()
    assert reply.status == 200
    assert reply.attempts == 3
    retries = [line for line in logs if line["event"] == "executor_retry"]
    assert [(line["status"], line["next_attempt"]) for line in retries] == [(503, 2), (503, 3)]
    assert {line["executor"] for line in retries} == {"test"}


def test_5xx_past_the_retries_fails_retryable_with_the_status_and_body(executor):
    executor.faults(fail={"count": 10, "status": 502})
    with pytest.raises(ExecutorError) as caught:
        executor.client(retries=2).health()
    error = caught.value
    assert (error.error_class, error.status, error.retryable, error.attempts) == ("http_status", 502, True, 3)
    assert error.code == "injected_fault"
    assert "injected_fault" in error.body


def test_a_post_is_retried_too_because_starts_are_idempotent(executor):
    executor.faults(fail={"count": 1, "status": 500, "path_prefix": "/v1/runs", "method": "POST"})
    run_id, reply = start(executor.client())
    assert reply.attempts == 2
    assert reply.status == 201
    assert executor.run_status(run_id)["run_id"] == run_id


def test_a_4xx_fails_at_once_without_a_retry(executor):
    executor.faults(fail={"count": 3, "status": 409, "path_prefix": "/v1/health"})
    with pytest.raises(ExecutorError) as caught:
        executor.client(retries=3).health()
    error = caught.value
    assert (error.error_class, error.status, error.retryable, error.attempts) == (
        "http_status",
        409,
        False,
        1,
    )
    remaining = executor.http("GET", "/v1/admin/faults", token=executor.admin_token).json()
    assert remaining["faults"]["fail"]["remaining"] == 2  # the server saw exactly one call


def test_a_429_with_retry_after_is_not_retried_either(executor):
    # urllib3 alone would retry a 429 that carries Retry-After; the protocol never retries a 4xx.
    executor.faults(fail={"count": 2, "status": 429, "retry_after": 0, "path_prefix": "/v1/health"})
    with pytest.raises(ExecutorError) as caught:
        executor.client(retries=3).health()
    assert (caught.value.status, caught.value.retryable, caught.value.attempts) == (429, False, 1)


def test_an_unknown_run_is_a_404_http_status_error(executor):
    with pytest.raises(ExecutorError) as caught:
        executor.client().get_run("no-such-run")
    assert (caught.value.status, caught.value.code, caught.value.attempts) == (404, "run_not_found", 1)


def test_a_wrong_token_is_refused_and_not_retried(executor):
    with pytest.raises(ExecutorError) as caught:
        executor.client(token="wrong", retries=3).health()
    error = caught.value
    assert (error.error_class, error.status, error.retryable, error.attempts) == (
        "http_status",
        401,
        False,
        1,
    )
    assert error.code == "not_authenticated"


def test_a_reply_slower_than_the_read_timeout_is_a_timeout(executor):
    executor.faults(latency={"seconds": 1.0, "path_prefix": "/v1/health"})
    with pytest.raises(ExecutorError) as caught:
        executor.client(read_timeout_s=0.2, retries=1).health()
    error = caught.value
    assert (error.error_class, error.retryable, error.attempts) == ("timeout", True, 2)


def test_a_closed_port_is_a_network_error_after_the_retries():
    client = ExecutorClient(
        ExecutorConfig("closed", f"http://127.0.0.1:{free_port()}", "t", retries=2), backoff_factor=0.01
    )
    with pytest.raises(ExecutorError) as caught:
        client.health()
    error = caught.value
    assert (error.error_class, error.retryable, error.attempts) == ("network", True, 3)
    assert "refused" in error.message.lower()


def test_retry_after_is_honoured(executor):
    executor.faults(fail={"count": 1, "status": 503, "retry_after": 1, "path_prefix": "/v1/health"})
    started = time.monotonic()
    reply = executor.client().health()
    assert reply.attempts == 2
    assert time.monotonic() - started >= 1.0


def test_starting_the_same_run_twice_through_the_client_creates_it_once(executor):
    client = executor.client()
    body = start_body(playbook="instant")
    kwargs = {
        "run_id": body["run_id"],
        "app": "a",
        "prompt": body["prompt"],
        "input": {},
        "agent": body["agent"],
    }
    first, second = client.start_run(**kwargs), client.start_run(**kwargs)
    assert (first.status, first.data["created"]) == (201, True)
    assert (second.status, second.data["created"]) == (200, False)
    events = list(client.iter_events(body["run_id"]))
    assert [e.type for e in events].count("run.started") == 1


def test_the_same_answer_sent_twice_through_the_client_is_applied_once(executor):
    client = executor.client()
    run_id, _ = start(client, "demo")
    request_id = executor.wait_for_state(run_id, "waiting_input")["pending_requests"][0]["request_id"]
    first = client.send_input(run_id, request_id=request_id, answer="approve")
    second = client.send_input(run_id, request_id=request_id, answer="approve")
    assert (first.data["applied"], second.data["applied"]) == (True, False)
    events = list(client.iter_events(run_id))
    assert [e.type for e in events].count("human_loop.reply") == 1


def test_events_after_n_are_exactly_the_events_after_n(executor):
    client = executor.client()
    run_id, _ = start(client, "flood", {"count": 20})
    everything = list(client.iter_events(run_id))
    assert [e.seq for e in everything] == list(range(1, 24))
    for after in (0, 5, 22):
        assert list(client.iter_events(run_id, after=after)) == everything[after:]


def test_a_cut_stream_is_a_network_error_and_resuming_from_the_last_seq_loses_and_repeats_nothing(executor):
    client = executor.client()
    run_id, _ = start(client, "flood", {"count": 500})
    executor.wait_for_state(run_id, "succeeded")
    executor.faults(cut_stream={"after_events": 120, "count": 2})
    received, errors = [], []
    while not received or not received[-1].terminal:
        try:
            drain(client.iter_events(run_id, after=received[-1].seq if received else 0), received)
        except ExecutorError as exc:
            errors.append(exc)
    assert [(e.error_class, e.retryable) for e in errors] == [("network", True), ("network", True)]
    assert [e.seq for e in received] == list(range(1, 504))


def test_a_long_quiet_stream_survives_on_keepalives(executor):
    # The executor sends a keep-alive every 0.2 s; the human answers after 2.5 s, far past the read timeout.
    client = executor.client(read_timeout_s=1.0)
    run_id, _ = start(client, "demo")
    started = time.monotonic()
    events = []
    for event in client.iter_events(run_id):
        events.append(event)
        if event.type == "human_loop.request":
            args = (run_id,)
            kwargs = {"request_id": event.data["request_id"], "answer": "approve"}
            threading.Timer(2.5, executor.client().send_input, args, kwargs).start()
    assert time.monotonic() - started >= 2.5
    assert events[-1].data == {"status": "succeeded"}


def test_a_stream_quieter_than_the_read_timeout_is_a_timeout(executor):
    client = executor.client(read_timeout_s=0.1)  # shorter than the executor's 0.2 s keep-alive
    run_id, _ = start(client, "demo")
    with pytest.raises(ExecutorError) as caught:
        drain(client.iter_events(run_id), [])
    assert caught.value.error_class == "timeout"
    executor.client().cancel_run(run_id)


def test_a_stream_that_ends_cleanly_before_the_terminal_event_is_a_network_error():
    # CRLF line endings, as an executor in another language may send them.
    body = (
        b'id: 1\r\ndata: {"seq":1,"type":"run.started","data":{}}\r\n\r\n: keep-alive\r\n\r\n'
        b'id: 2\r\ndata: {"seq":2,"type":"message.delta","data":{"message_id":"m","text":"x"}}\r\n\r\n'
    )
    with RecordingServer(lambda request: (200, body)) as server:
        client = ExecutorClient(ExecutorConfig("x", server.url, "t"))
        received = []
        with pytest.raises(ExecutorError) as caught:
            drain(client.iter_events("r1"), received)
    assert [e.seq for e in received] == [1, 2]
    assert caught.value.error_class == "network"
    assert "after seq 2" in caught.value.message


def sse_event(seq, event_type="message.delta", data=None):
    payload = {
        "seq": seq,
        "type": event_type,
        "data": data if data is not None else {"message_id": "m", "text": "x"},
    }
    return f"id: {seq}\ndata: {json.dumps(payload)}\n\n".encode()


def test_a_repeated_seq_is_skipped():
    body = (
        sse_event(1)
        + sse_event(2)
        + sse_event(2)
        + sse_event(1)
        + sse_event(3, "run.finished", {"status": "succeeded"})
    )
    with RecordingServer(lambda request: (200, body)) as server:
        events = list(ExecutorClient(ExecutorConfig("x", server.url, "t")).iter_events("r1"))
    assert [e.seq for e in events] == [1, 2, 3]


def test_a_gap_in_the_seqs_is_a_network_error_so_the_caller_resumes_before_it():
    body = sse_event(1) + sse_event(3)
    received = []
    with RecordingServer(lambda request: (200, body)) as server:
        client = ExecutorClient(ExecutorConfig("x", server.url, "t"))
        with pytest.raises(ExecutorError) as caught:
            drain(client.iter_events("r1"), received)
    assert [e.seq for e in received] == [1]
    assert caught.value.error_class == "network"


def test_a_malformed_event_is_an_http_status_error():
    with RecordingServer(lambda request: (200, b"id: 1\ndata: {not json\n\n")) as server:
        client = ExecutorClient(ExecutorConfig("x", server.url, "t"))
        with pytest.raises(ExecutorError) as caught:
            drain(client.iter_events("r1"), [])
    assert (caught.value.error_class, caught.value.retryable) == ("http_status", False)


def _pooled(client):
    """The connection the client's pool would hand out next (left in the pool)."""
    pools = client.pool.pools
    [pool] = [pools[key] for key in pools.keys()]  # noqa: SIM118 - the container only offers keys()
    connection = pool.pool.get(block=False)
    pool.pool.put(connection)
    return connection


def test_a_stream_read_to_its_terminal_event_gives_its_connection_back_for_the_next_call(executor):
    client = executor.client()
    local_addresses = set()
    for _ in range(3):
        run_id, _ = start(client)
        batches = client.iter_event_batches(run_id)
        for batch in batches:  # as the orchestrator does: stop at the terminal event, then close
            if batch[-1].terminal:
                break
        batches.close()
        connection = _pooled(client)
        assert connection.sock is not None, "the connection was closed"
        local_addresses.add(connection.sock.getsockname())
    assert len(local_addresses) == 1


def test_a_stream_held_open_after_its_terminal_event_is_dropped_without_waiting_for_it():
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []

    def serve():
        conn, _ = listener.accept()
        held.append(conn)
        conn.recv(65536)
        event = sse_event(1, "run.finished", {"status": "succeeded"})
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            + f"{len(event):x}\r\n".encode()
            + event
            + b"\r\n"
        )  # and never the last chunk

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ExecutorClient(ExecutorConfig("x", f"http://127.0.0.1:{port}", "t"))
    began = time.monotonic()
    batches = client.iter_event_batches("r1")
    assert [e.type for e in next(batches)] == ["run.finished"]
    batches.close()
    assert time.monotonic() - began < 1
    connection = _pooled(client)
    assert connection is None or connection.sock is None  # nothing half-read was kept
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def test_the_environments_proxy_is_used_and_no_proxy_bypasses_it(monkeypatch):
    from tests.executor_support import RecordingServer

    with RecordingServer(lambda request: (200, {"status": "ok"})) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = ExecutorClient(ExecutorConfig("x", "http://executor.invalid:8100", "t"))
        assert client.health().data == {"status": "ok"}
        assert proxy.requests[0].path == "http://executor.invalid:8100/v1/health"  # absolute: a proxy request
        assert proxy.requests[0].headers["Authorization"] == "Bearer t"
        monkeypatch.setenv("NO_PROXY", "executor.invalid")
        bypassing = ExecutorClient(ExecutorConfig("x", "http://executor.invalid:8100", "t", retries=0))
        with pytest.raises(ExecutorError) as caught:
            bypassing.health()
        assert caught.value.error_class == "network"
        assert len(proxy.requests) == 1


def test_a_stream_left_before_its_end_does_not_leave_its_connection_half_read(executor):
    client = executor.client()
    run_id, _ = start(client, "long", {"seconds": 5})
    batches = client.iter_event_batches(run_id)
    assert next(batches)[0].type == "run.started"
    batches.close()  # as the orchestrator does when the run parks
    connection = _pooled(client)
    assert connection is None or connection.sock is None
    assert client.health().data["status"] == "ok"  # the next call gets a clean connection
    client.cancel_run(run_id)
