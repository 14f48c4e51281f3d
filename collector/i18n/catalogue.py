"""The message catalogue: every text a person reads, by key, in French and English.

Keys are dotted (``problem.title.409``); values are ``str.format`` templates with named fields.
A key missing in a language is a bug the tests look for (``tests/collector/i18n``), so ``text``
never falls back silently: it raises ``KeyError`` naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.i18n.language import Language

MESSAGES: Mapping[str, Mapping[Language, str]] = {
    # Titles of the API's problem documents (RFC 9457), by HTTP status.
    "problem.title.400": {"fr": "Requête incorrecte", "en": "Bad request"},
    "problem.title.401": {"fr": "Authentification requise", "en": "Authentication required"},
    "problem.title.403": {"fr": "Action non permise pour ce rôle", "en": "Forbidden"},
    "problem.title.404": {"fr": "Introuvable", "en": "Not found"},
    "problem.title.405": {"fr": "Méthode non permise", "en": "Method not allowed"},
    "problem.title.406": {"fr": "Format de réponse non disponible", "en": "Not acceptable"},
    "problem.title.409": {
        "fr": "Incompatible avec l'état actuel",
        "en": "Conflict with the current state",
    },
    "problem.title.412": {
        "fr": "Modifié entre-temps : rechargez avant de modifier",
        "en": "Changed meanwhile: reload before editing",
    },
    "problem.title.413": {"fr": "Requête trop volumineuse", "en": "Request too large"},
    "problem.title.415": {
        "fr": "Type de contenu non pris en charge",
        "en": "Unsupported media type",
    },
    "problem.title.422": {"fr": "Requête non valide", "en": "Invalid request"},
    "problem.title.429": {"fr": "Trop de requêtes", "en": "Too many requests"},
    "problem.title.500": {"fr": "Erreur interne", "en": "Internal error"},
    "problem.title.503": {"fr": "Service indisponible", "en": "Service unavailable"},
    "problem.title.other": {"fr": "Erreur", "en": "Error"},
    # Details the API writes itself (the domain's own messages come from the services).
    "problem.detail.internal": {
        "fr": "erreur interne : l'incident est journalisé côté collecteur",
        "en": "internal error: it is logged at the collector",
    },
    "problem.detail.missing_token": {
        "fr": "jeton d'accès absent (en-tête Authorization: Bearer)",
        "en": "missing bearer token",
    },
    "problem.detail.invalid_token": {
        "fr": "jeton d'accès invalide ou expiré",
        "en": "invalid or expired token",
    },
}


def text(key: str, language: Language, /, **fields: Any) -> str:
    """The message ``key`` in ``language``, its ``{fields}`` filled."""
    try:
        template = MESSAGES[key][language]
    except KeyError:
        raise KeyError(f"message {key!r} has no {language!r} text in the catalogue") from None
    return template.format(**fields) if fields else template
