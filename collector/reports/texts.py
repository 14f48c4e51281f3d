"""What a person reads in a report, French first and English on request (``Accept-Language``).

Codes (states, criticalities, ticket kinds) are shown by their French name; one the catalogue
does not know is shown as its code rather than hidden.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

__all__ = ["Lang", "ReportTable", "label", "language", "month_name", "text"]

Lang = Literal["fr", "en"]


class ReportTable(StrEnum):
    """The tables of the monthly report, one CSV file each."""

    TICKETS = "tickets"
    SUMMARY = "summary"
    SITES = "sites"


_TEXTS: dict[str, tuple[str, str]] = {
    # table file names (inside the zip)
    "file.tickets": ("tickets", "tickets"),
    "file.summary": ("synthese", "summary"),
    "file.sites": ("disponibilite-sites", "site-availability"),
    # tickets table
    "col.ref": ("Référence", "Reference"),
    "col.client_ref": ("Référence client", "Client reference"),
    "col.site_id": ("Site", "Site"),
    "col.kind": ("Type", "Kind"),
    "col.criticality": ("Criticité", "Criticality"),
    "col.state": ("État", "State"),
    "col.opened_at": ("Ouvert le (heure de Paris)", "Opened (Paris time)"),
    "col.restored_at": ("Rétabli le (heure de Paris)", "Restored (Paris time)"),
    "col.elapsed_min": ("Durée décomptée (min)", "Counted time (min)"),
    "col.gtr_min": ("GTR (min)", "GTR (min)"),
    "col.within_gtr": ("Dans la GTR", "Within GTR"),
    "col.penalty_eur": ("Pénalité (EUR)", "Penalty (EUR)"),
    # summary table
    "col.indicator": ("Indicateur", "Indicator"),
    "col.value": ("Valeur", "Value"),
    "sum.client_id": ("Client", "Client"),
    "sum.client_name": ("Nom du client", "Client name"),
    "sum.month": ("Mois", "Month"),
    "sum.since": ("Début de période (heure de Paris)", "Period start (Paris time)"),
    "sum.until": ("Fin de période, exclue (heure de Paris)", "Period end, excluded (Paris time)"),
    "sum.tickets": ("Tickets", "Tickets"),
    "sum.gtr_compliance_pct": ("Respect de la GTR (%)", "GTR compliance (%)"),
    "sum.breaches": ("Dépassements de GTR", "GTR breaches"),
    "sum.penalties_eur": ("Pénalités (EUR)", "Penalties (EUR)"),
    "sum.mttr_min": ("Temps moyen de rétablissement (min)", "Mean time to restore (min)"),
    "sum.problems_opened": ("Problèmes ouverts", "Problems opened"),
    "sum.problems_closed": ("Problèmes clos", "Problems closed"),
    "sum.by_criticality": ("Tickets de criticité {}", "Tickets of criticality {}"),
    "sum.by_state": ("Tickets à l'état {}", "Tickets in state {}"),
    # sites table
    "col.outage_min": ("Indisponibilité (min)", "Outage (min)"),
    "col.availability_pct": ("Disponibilité (%)", "Availability (%)"),
    # values
    "yes": ("oui", "yes"),
    "no": ("non", "no"),
    "none": ("aucun", "none"),
    # page
    "page.title": ("Rapport QoS / SLA", "QoS / SLA report"),
    "page.period": (
        "Période : du {} au {} inclus, heure de Paris ({} h)",
        "Period: {} to {} inclusive, Paris time ({} h)",
    ),
    "page.summary": (
        "{} tickets ; respect de la GTR {} % ; {} dépassement(s) ; pénalités {} EUR ;"
        " temps moyen de rétablissement {} min. Problèmes : {} ouvert(s), {} clos.",
        "{} tickets; GTR compliance {} %; {} breach(es); penalties {} EUR;"
        " mean time to restore {} min. Problems: {} opened, {} closed.",
    ),
    "page.by_criticality": ("Tickets par criticité", "Tickets by criticality"),
    "page.by_state": ("Tickets par état", "Tickets by state"),
    "page.availability": ("Disponibilité des sites", "Site availability"),
    "page.tickets": ("Tickets", "Tickets"),
    "page.counted_gtr": ("Décompté / GTR (min)", "Counted / GTR (min)"),
}

_LABELS: dict[str, tuple[str, str]] = {
    "critical": ("critique", "critical"),
    "major": ("majeure", "major"),
    "minor": ("mineure", "minor"),
    "warning": ("avertissement", "warning"),
    "opened": ("ouvert", "opened"),
    "qualified": ("qualifié", "qualified"),
    "in_progress": ("en cours", "in progress"),
    "waiting_client": ("en attente client", "waiting for client"),
    "restored": ("rétabli", "restored"),
    "closed": ("clos", "closed"),
    "cancelled": ("annulé", "cancelled"),
    "curative": ("curatif", "curative"),
    "sav": ("SAV", "after-sales"),
    "incident": ("incident", "incident"),
    "generic_incident": ("incident générique", "generic incident"),
}


_MONTHS = (
    ("janvier", "January"), ("février", "February"), ("mars", "March"), ("avril", "April"),
    ("mai", "May"), ("juin", "June"), ("juillet", "July"), ("août", "August"),
    ("septembre", "September"), ("octobre", "October"), ("novembre", "November"),
    ("décembre", "December"),
)  # fmt: skip


def month_name(label: str, lang: Lang) -> str:
    """``2026-03`` as people write it: ``mars 2026`` (``March 2026``)."""
    year, month = label.split("-")
    fr, en = _MONTHS[int(month) - 1]
    return f"{fr if lang == 'fr' else en} {year}"


def text(key: str, lang: Lang) -> str:
    """The catalogue text of ``key`` in ``lang``."""
    fr, en = _TEXTS[key]
    return fr if lang == "fr" else en


def label(code: str, lang: Lang) -> str:
    """The readable name of a state, criticality or ticket kind (the code if unknown)."""
    names = _LABELS.get(code)
    if names is None:
        return code
    return names[0] if lang == "fr" else names[1]


def language(accept_language: str | None) -> Lang:
    """French unless the caller prefers English (``Accept-Language``, by its q weights)."""
    best: tuple[float, Lang] = (-1.0, "fr")
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("fr", "en"):
            continue
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        # On equal weights French wins: it is the users' language.
        if weight > best[0] or (weight == best[0] and primary == "fr"):
            best = (weight, "fr" if primary == "fr" else "en")
    return best[1] if best[0] > 0 else "fr"
