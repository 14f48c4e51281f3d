"""A ticket read again with ``If-None-Match`` answers 304 while nothing the caller sees has
changed; its ETag changes with the ticket, with the SLA clock running, and with the caller's
view, so one caller's cached copy never stands for another's; the same ETag works in
``If-Match`` to change the ticket."""

from __future__ import annotations

from protocol import Transition
from tests.collector.conftest import Desk


def test_a_ticket_unchanged_answers_304_and_a_change_answers_it_anew(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, site="NRO-LYO-01")
    ref = desk.tickets()[0]["ref"]
    first = desk.client.get(f"/api/v1/tickets/{ref}")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    assert "Authorization" in first.headers["vary"]
    again = desk.client.get(f"/api/v1/tickets/{ref}", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    listed = desk.client.get(
        f"/api/v1/tickets/{ref}", headers={"If-None-Match": f'"1.0000000000000000", {etag}'}
    )
    assert listed.status_code == 304
    # The SLA clock runs: what the ticket shows changes without a new version.
    desk.clock.advance(minutes=5)
    later = desk.client.get(f"/api/v1/tickets/{ref}", headers={"If-None-Match": etag})
    assert later.status_code == 200 and later.headers["etag"] != etag
    assert later.headers["etag"].split(".")[0] == etag.split(".")[0]  # same version
    # A change of the ticket: a new version, and the ETag read works in If-Match.
    moved = desk.client.post(
        f"/api/v1/tickets/{ref}/transition",
        json={"to": "qualified"},
        headers={"If-Match": later.headers["etag"]},
    )
    assert moved.status_code == 200, moved.text
    stale = desk.client.post(
        f"/api/v1/tickets/{ref}/transition",
        json={"to": "in_progress"},
        headers={"If-Match": later.headers["etag"]},
    )
    assert stale.status_code == 412


def test_another_callers_etag_never_validates_a_clients_view(desk: Desk) -> None:
    desk.alarm(Transition.RAISED, site="NRO-LYO-01")  # a site of client op-alpha
    ref = desk.tickets()[0]["ref"]
    noc = desk.client.get(f"/api/v1/tickets/{ref}").headers["etag"]
    client = desk.client.get(f"/api/v1/tickets/{ref}", headers=desk.alpha)
    assert client.status_code == 200 and client.headers["etag"] != noc
    with_nocs = desk.client.get(
        f"/api/v1/tickets/{ref}", headers={**desk.alpha, "If-None-Match": noc}
    )
    assert with_nocs.status_code == 200 and with_nocs.json()["ref"] == ref
