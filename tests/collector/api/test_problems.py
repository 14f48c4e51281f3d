"""Every error of the API is an RFC 9457 problem document (``application/problem+json``): its
title in the caller's language (French unless ``Accept-Language`` says English), its detail
naming what is wrong, a stable ``code``, and what the error itself adds (the transitions a
refused move allows)."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import Transition
from tests.collector.conftest import Desk

KEYS = {"type", "title", "status", "detail", "code", "details"}


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= KEYS
    assert body["status"] == status
    assert body["type"] == f"urn:shelterwatch:problem:{body['code']}"
    return body


def test_a_refused_transition_lists_the_allowed_ones(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    body = problem(desk.move(ref, "restored"), 409)
    assert body["code"] == "conflict"
    assert body["title"] == "Incompatible avec l'état actuel"
    assert body["allowed_transitions"] == ["cancelled", "qualified"]
    assert body["detail"].startswith(f"ticket {ref}: cannot go from opened to restored")


def test_a_stale_if_match_says_to_reload(desk: Desk) -> None:
    desk.alarm(Transition.RAISED)
    ref = desk.tickets()[0]["ref"]
    etag = desk.client.get(f"/api/v1/tickets/{ref}").headers["etag"]
    assert desk.move(ref, "qualified").status_code == 200
    stale = desk.client.post(
        f"/api/v1/tickets/{ref}/transition", json={"to": "cancelled"}, headers={"If-Match": etag}
    )
    body = problem(stale, 412)
    assert (body["code"], body["title"]) == (
        "precondition_failed",
        "Modifié entre-temps : rechargez avant de modifier",
    )


@pytest.mark.parametrize(
    ("language", "title", "detail"),
    [
        (None, "Authentification requise", "jeton d'accès absent (en-tête Authorization: Bearer)"),
        ("fr-FR,fr;q=0.9", "Authentification requise", "jeton d'accès absent"),
        ("en-GB,en;q=0.9,fr;q=0.5", "Authentication required", "missing bearer token"),
    ],
)
def test_titles_and_the_apis_own_details_are_in_the_callers_language(
    desk: Desk, language: str | None, title: str, detail: str
) -> None:
    headers = {"Authorization": ""} | ({"Accept-Language": language} if language else {})
    response = desk.client.get("/api/v1/tickets", headers=headers)
    body = problem(response, 401)
    assert (body["title"], body["code"]) == (title, "unauthorized")
    assert body["detail"].startswith(detail)
    assert response.headers["content-language"] == (language or "fr")[:2]
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_invalid_request_names_each_field(desk: Desk) -> None:
    response = desk.client.get("/api/v1/alarms", params={"limit": 0, "severity": "huge"})
    body = problem(response, 422)
    wheres = sorted(d["where"] for d in body["details"])
    assert wheres == ["query.limit", "query.severity"]
    assert body["detail"].startswith("query.")


def test_not_found_and_a_body_that_is_not_json(desk: Desk) -> None:
    assert problem(desk.client.get("/api/v1/tickets/TK-0000-000000"), 404)["code"] == "not_found"
    assert problem(desk.client.get("/api/v1/nothing-here"), 404)["code"] == "not_found"
    garbled = desk.client.post(
        "/api/v1/sites", content=b"\x04{not json", headers={"Content-Type": "application/json"}
    )
    assert problem(garbled, 422)["detail"] == "body.0: JSON decode error"


def test_the_document_declares_bearer_auth_and_problem_documents_everywhere(desk: Desk) -> None:
    document = desk.client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in document["components"]["schemas"]
    operations = [
        (path, method, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if path.startswith("/api/v1/")
    ]
    assert len(operations) >= 50
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("security") == [{"bearer": []}], where
        assert {"401", "403"} <= set(op["responses"]), where
        if "{" in path:
            assert "404" in op["responses"], where
        for status, response in op["responses"].items():
            if status[0] in "45":
                assert list(response["content"]) == ["application/problem+json"], where
