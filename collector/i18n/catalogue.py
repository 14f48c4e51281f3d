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
    # Reports (collector.reports): the monthly report's CSV tables, page and labels.
    "report.file.tickets": {"fr": "tickets", "en": "tickets"},
    "report.file.summary": {"fr": "synthese", "en": "summary"},
    "report.file.sites": {"fr": "disponibilite-sites", "en": "site-availability"},
    "report.col.ref": {"fr": "Référence", "en": "Reference"},
    "report.col.client_ref": {"fr": "Référence client", "en": "Client reference"},
    "report.col.site_id": {"fr": "Site", "en": "Site"},
    "report.col.kind": {"fr": "Type", "en": "Kind"},
    "report.col.criticality": {"fr": "Criticité", "en": "Criticality"},
    "report.col.state": {"fr": "État", "en": "State"},
    "report.col.opened_at": {"fr": "Ouvert le (heure de Paris)", "en": "Opened (Paris time)"},
    "report.col.restored_at": {"fr": "Rétabli le (heure de Paris)", "en": "Restored (Paris time)"},
    "report.col.elapsed_min": {"fr": "Durée décomptée (min)", "en": "Counted time (min)"},
    "report.col.gtr_min": {"fr": "GTR (min)", "en": "GTR (min)"},
    "report.col.within_gtr": {"fr": "Dans la GTR", "en": "Within GTR"},
    "report.col.penalty_eur": {"fr": "Pénalité (EUR)", "en": "Penalty (EUR)"},
    "report.col.indicator": {"fr": "Indicateur", "en": "Indicator"},
    "report.col.value": {"fr": "Valeur", "en": "Value"},
    "report.sum.client_id": {"fr": "Client", "en": "Client"},
    "report.sum.client_name": {"fr": "Nom du client", "en": "Client name"},
    "report.sum.month": {"fr": "Mois", "en": "Month"},
    "report.sum.since": {
        "fr": "Début de période (heure de Paris)",
        "en": "Period start (Paris time)",
    },
    "report.sum.until": {
        "fr": "Fin de période, exclue (heure de Paris)",
        "en": "Period end, excluded (Paris time)",
    },
    "report.sum.tickets": {"fr": "Tickets", "en": "Tickets"},
    "report.sum.gtr_compliance_pct": {"fr": "Respect de la GTR (%)", "en": "GTR compliance (%)"},
    "report.sum.breaches": {"fr": "Dépassements de GTR", "en": "GTR breaches"},
    "report.sum.penalties_eur": {"fr": "Pénalités (EUR)", "en": "Penalties (EUR)"},
    "report.sum.mttr_min": {
        "fr": "Temps moyen de rétablissement (min)",
        "en": "Mean time to restore (min)",
    },
    "report.sum.problems_opened": {"fr": "Problèmes ouverts", "en": "Problems opened"},
    "report.sum.problems_closed": {"fr": "Problèmes clos", "en": "Problems closed"},
    "report.sum.by_criticality": {
        "fr": "Tickets de criticité {name}",
        "en": "Tickets of criticality {name}",
    },
    "report.sum.by_state": {"fr": "Tickets à l'état {name}", "en": "Tickets in state {name}"},
    "report.col.outage_min": {"fr": "Indisponibilité (min)", "en": "Outage (min)"},
    "report.col.availability_pct": {"fr": "Disponibilité (%)", "en": "Availability (%)"},
    "report.yes": {"fr": "oui", "en": "yes"},
    "report.no": {"fr": "non", "en": "no"},
    "report.none": {"fr": "aucun", "en": "none"},
    "report.page.title": {"fr": "Rapport QoS / SLA", "en": "QoS / SLA report"},
    "report.page.period": {
        "fr": "Période : du {first} au {last} inclus, heure de Paris ({hours} h)",
        "en": "Period: {first} to {last} inclusive, Paris time ({hours} h)",
    },
    "report.page.summary": {
        "fr": (
            "{tickets} tickets ; respect de la GTR {compliance} % ; {breaches} dépassement(s) ;"
            " pénalités {penalties} EUR ; temps moyen de rétablissement {mttr} min."
            " Problèmes : {opened} ouvert(s), {closed} clos."
        ),
        "en": (
            "{tickets} tickets; GTR compliance {compliance} %; {breaches} breach(es);"
            " penalties {penalties} EUR; mean time to restore {mttr} min."
            " Problems: {opened} opened, {closed} closed."
        ),
    },
    "report.page.by_criticality": {"fr": "Tickets par criticité", "en": "Tickets by criticality"},
    "report.page.by_state": {"fr": "Tickets par état", "en": "Tickets by state"},
    "report.page.availability": {"fr": "Disponibilité des sites", "en": "Site availability"},
    "report.page.tickets": {"fr": "Tickets", "en": "Tickets"},
    "report.page.counted_gtr": {"fr": "Décompté / GTR (min)", "en": "Counted / GTR (min)"},
    "report.label.critical": {"fr": "critique", "en": "critical"},
    "report.label.major": {"fr": "majeure", "en": "major"},
    "report.label.minor": {"fr": "mineure", "en": "minor"},
    "report.label.warning": {"fr": "avertissement", "en": "warning"},
    "report.label.opened": {"fr": "ouvert", "en": "opened"},
    "report.label.qualified": {"fr": "qualifié", "en": "qualified"},
    "report.label.in_progress": {"fr": "en cours", "en": "in progress"},
    "report.label.waiting_client": {"fr": "en attente client", "en": "waiting for client"},
    "report.label.restored": {"fr": "rétabli", "en": "restored"},
    "report.label.closed": {"fr": "clos", "en": "closed"},
    "report.label.cancelled": {"fr": "annulé", "en": "cancelled"},
    "report.label.curative": {"fr": "curatif", "en": "curative"},
    "report.label.sav": {"fr": "SAV", "en": "after-sales"},
    "report.label.incident": {"fr": "incident", "en": "incident"},
    "report.label.generic_incident": {"fr": "incident générique", "en": "generic incident"},
    "report.month.01": {"fr": "janvier", "en": "January"},
    "report.month.02": {"fr": "février", "en": "February"},
    "report.month.03": {"fr": "mars", "en": "March"},
    "report.month.04": {"fr": "avril", "en": "April"},
    "report.month.05": {"fr": "mai", "en": "May"},
    "report.month.06": {"fr": "juin", "en": "June"},
    "report.month.07": {"fr": "juillet", "en": "July"},
    "report.month.08": {"fr": "août", "en": "August"},
    "report.month.09": {"fr": "septembre", "en": "September"},
    "report.month.10": {"fr": "octobre", "en": "October"},
    "report.month.11": {"fr": "novembre", "en": "November"},
    "report.month.12": {"fr": "décembre", "en": "December"},
}


def text(key: str, language: Language, /, **fields: Any) -> str:
    """The message ``key`` in ``language``, its ``{fields}`` filled."""
    try:
        template = MESSAGES[key][language]
    except KeyError:
        raise KeyError(f"message {key!r} has no {language!r} text in the catalogue") from None
    return template.format(**fields) if fields else template
