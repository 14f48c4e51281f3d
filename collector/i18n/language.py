"""Which language to answer in: the operators and clients are French, so French unless the
caller prefers English."""

from __future__ import annotations

from typing import Literal, get_args

Language = Literal["fr", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)
DEFAULT_LANGUAGE: Language = "fr"


def negotiate(accept_language: str | None, *, preferred: str | None = None) -> Language:
    """The language of an answer: the user's own preference when set, else the best of
    ``Accept-Language`` (RFC 9110 12.5.4: quality values, ``en-GB`` counts as ``en``), else
    French. A malformed header is read as far as it makes sense, never refused."""
    if preferred in LANGUAGES:
        return preferred  # type: ignore[return-value]
    best: tuple[float, int, Language] | None = None
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        quality = _quality(params)
        if quality <= 0:
            continue
        if primary == "*":
            primary = DEFAULT_LANGUAGE
        if primary not in LANGUAGES:
            continue
        # Highest quality wins; at equal quality, the earlier in the header.
        candidate = (quality, -position, primary)
        if best is None or candidate[:2] > best[:2]:
            best = candidate  # type: ignore[assignment]
    return best[2] if best is not None else DEFAULT_LANGUAGE


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0
