"""The input buffer and the output queue on their own: bytes in, bytes out, no sockets.

Both are checked against a plain `bytes` model after every step of a random
sequence of operations, so the terminator-search memo, the compaction of
the input buffer and the chunking of the output queue can never make them
disagree with the obvious answer.
"""

from __future__ import annotations

import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layer1_sockets._buffers import InputBuffer, OutputQueue, as_view

BIG = bytes(range(256)) * 300  # 75 KiB: beyond the compaction and by-reference thresholds


def model_complete(content: bytes, maxlen: int | None, terminator: int | None) -> int | None:
    limit = len(content) if maxlen is None else min(len(content), maxlen)
    if terminator is not None:
        found = content.find(bytes([terminator]), 0, limit)
        if found >= 0:
            return found + 1
    if maxlen is not None and len(content) >= maxlen:
        return maxlen
    return None


pieces = st.one_of(st.binary(max_size=30), st.sampled_from([b"\n", b"a\nb", BIG]))
input_steps = st.lists(st.one_of(
    st.tuples(st.just("append"), pieces),
    st.tuples(st.just("complete"), st.sampled_from([None, 1, 5, 100, 80_000]),
              st.sampled_from([None, ord("\n"), ord("a")])),
    st.tuples(st.just("take"), st.integers(0, 90_000)),
    st.tuples(st.just("drop"), st.integers(0, 90_000)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps=input_steps)
def test_input_buffer_agrees_with_a_bytes_model(steps: list[tuple[object, ...]]) -> None:
    buffer, content = InputBuffer(), b""
    for step in steps:
        if step[0] == "append":
            assert isinstance(step[1], bytes)
            buffer.append(step[1])
            content += step[1]
        elif step[0] == "complete":
            maxlen, terminator = step[1], step[2]
            assert maxlen is None or isinstance(maxlen, int)
            assert terminator is None or isinstance(terminator, int)
            assert buffer.complete(maxlen, terminator) == model_complete(
                content, maxlen, terminator)
        elif step[0] == "take":
            assert isinstance(step[1], int)
            assert buffer.take(step[1]) == content[:step[1]]
            content = content[step[1]:]
        else:
            assert isinstance(step[1], int)
            assert buffer.drop(step[1]) == min(step[1], len(content))
            content = content[step[1]:]
        assert len(buffer) == len(content)


def test_a_line_arriving_byte_by_byte_is_found() -> None:
    buffer = InputBuffer()
    for byte in b"x" * 1000:
        buffer.append(bytes([byte]))
        assert buffer.complete(None, ord("\n")) is None
    buffer.append(b"\n")
    assert buffer.complete(None, ord("\n")) == 1001
    assert buffer.complete(None, ord("y")) is None  # another terminator: searched afresh
    assert buffer.complete(2000, ord("\n")) == 1001


queue_steps = st.lists(st.one_of(
    st.tuples(st.just("bytes"), pieces),
    st.tuples(st.just("bytearray"), pieces),
    st.tuples(st.just("memoryview"), pieces),
    st.tuples(st.just("send"), st.integers(0, 100_000), st.integers(1, 1 << 20)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps=queue_steps)
def test_output_queue_agrees_with_a_bytes_model(steps: list[tuple[object, ...]]) -> None:
    queue, content, sent = OutputQueue(), b"", bytearray()
    for step in steps:
        kind = step[0]
        if kind == "send":
            accept, limit = step[1], step[2]
            assert isinstance(accept, int) and isinstance(limit, int)

            def send(view: memoryview, accept: int = accept) -> int:
                count = min(len(view), accept)
                sent.extend(view[:count])
                return count

            count = queue.send_head(send, limit)
            assert count <= limit
        else:
            data = step[1]
            assert isinstance(data, bytes)
            if kind == "bytearray":
                mutable = bytearray(data)
                queue.append(memoryview(mutable))
                mutable[:] = b"changed!"  # the queue kept its own copy
            else:
                queue.append(memoryview(data))
            content += data
        assert bytes(sent) + queue.peek_all() == content
        assert len(queue) == len(content) - len(sent)
    queue.clear()
    assert len(queue) == 0 and queue.peek_all() == b""


def test_as_view_flattens_and_refuses_text() -> None:
    numbers = array.array("H", [1, 2, 3])
    view = as_view(numbers)
    assert view.format == "B" and view.nbytes == 6
    with pytest.raises(TypeError, match="str"):
        as_view("text")
    with pytest.raises(TypeError):
        as_view(42)
