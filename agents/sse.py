"""A small, fast Server-Sent Events parser over a stream of byte chunks.

Handles LF and CRLF line endings, comments (keep-alives), multi-line ``data`` and messages split across
chunks. A bare CR line ending (allowed by the SSE spec, sent by no server we know) is not supported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseMessage:
    id: str | None
    event: str | None
    data: str


def _parse_block(block: bytes) -> SseMessage | None:
    message_id = event = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue  # a comment: keep-alives are these
        field, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if field == b"data":
            data.append(value)
        elif field == b"id":
            message_id = value.decode()
        elif field == b"event":
            event = value.decode()
    if not data:
        return None
    return SseMessage(message_id, event, b"\n".join(data).decode())


def iter_sse_batches(chunks: Iterable[bytes], *, idle: bool = False) -> Iterator[list[SseMessage]]:
    """The messages completed by each chunk, as one list per chunk (chunks that complete none are skipped,
    or with ``idle`` given as an empty list: a keep-alive then wakes the reader).

    A reader that stores what it receives can write each list in one transaction: when the sender floods,
    a chunk holds many messages; when it trickles, one — so batching never delays a message.
    """
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        if b"\r" in buffer:
            # A CR at the very end may be the first half of a CRLF split across chunks: it stays until the
            # next chunk arrives (a trailing lone CR never terminates a block on its own anyway).
            buffer = buffer.replace(b"\r\n", b"\n")
        *blocks, buffer = buffer.split(b"\n\n")
        messages = [message for message in map(_parse_block, blocks) if message is not None]
        if messages or (idle and blocks):
            yield messages


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SseMessage]:
    for batch in iter_sse_batches(chunks):
        yield from batch
