"""The live stream resumes after ``Last-Event-ID``; a value that is no event id of this stream
is refused before the stream opens (once open, an error can no longer be answered)."""

from __future__ import annotations

import re

import pytest

from collector.feed import routes
from protocol import Transition
from tests.collector.conftest import Desk


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "POLL_S", 0.01)


def _ids(text: str) -> list[str]:
    return re.findall(r"^id: (\d+)$", text, flags=re.MULTILINE)


def test_the_stream_resumes_after_the_last_event_id(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)  # an alarm and its ticket: several events
    everything = _ids(desk.client.get("/api/v1/stream?after=0&max_s=0.1").text)
    assert len(everything) >= 2
    resumed = desk.client.get("/api/v1/stream?max_s=0.1", headers={"Last-Event-ID": everything[0]})
    assert resumed.status_code == 200
    assert resumed.headers["content-type"].startswith("text/event-stream")
    assert _ids(resumed.text) == everything[1:]


@pytest.mark.parametrize(
    "last_event_id",
    [
        "1" + "0" * 30,  # once raised inside the open stream
        "9" * 5000,  # once a 500
        "9223372036854775808",  # past a 64-bit id
        "abc",  # once ignored silently
        "-1",
        "²",  # a digit to str.isdigit, not to int()
    ],
)
def test_a_last_event_id_that_is_no_event_id_is_a_400_before_the_stream(
    desk: Desk, last_event_id: str
) -> None:
    header = last_event_id.encode("latin-1")  # HTTP headers are bytes: "²" is one byte
    response = desk.client.get("/api/v1/stream?max_s=0.1", headers={"Last-Event-ID": header})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(
        "Last-Event-ID: expected an event id from this stream, got "
    )
