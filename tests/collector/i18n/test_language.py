"""The language of what a person reads: French unless the caller prefers English, and a
catalogue where every message exists in both."""

from __future__ import annotations

import string

import pytest

from collector.i18n import LANGUAGES, MESSAGES, negotiate, text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "fr"),
        ("", "fr"),
        ("en", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("de-DE,de;q=0.9,en;q=0.5", "en"),  # German is not offered: English was accepted
        ("de", "fr"),  # nothing offered was asked for: the default
        ("en;q=0.2,fr;q=0.8", "fr"),
        ("fr;q=0, en", "en"),  # q=0: "not this one"
        ("*", "fr"),
        ("en;q=abc, fr;q=0.1", "fr"),  # an unreadable quality counts as refused
        (";;,,;q=,en", "en"),
    ],
)
def test_the_best_offered_language_of_accept_language_else_french(
    header: str | None, expected: str
) -> None:
    assert negotiate(header) == expected


def test_a_users_own_preference_wins_over_the_browsers() -> None:
    assert negotiate("fr", preferred="en") == "en"
    assert negotiate("en", preferred="it") == "en"  # an unknown preference is ignored


def test_every_message_exists_in_every_language_with_the_same_fields() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        fields = {
            lang: {f for _, f, _, _ in string.Formatter().parse(t) if f}
            for lang, t in texts.items()
        }
        assert len({frozenset(f) for f in fields.values()}) == 1, (key, fields)


def test_an_unknown_key_is_an_error_naming_it() -> None:
    with pytest.raises(KeyError, match=r"problem\.title\.999"):
        text("problem.title.999", "fr")
