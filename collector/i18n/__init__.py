"""What a person reads, in their language: French by default, English on request (a user's
preference or ``Accept-Language``). One catalogue of messages (``catalogue``), and the choice of
language (``language``). No feature imports here: every feature may use it."""

from collector.i18n.catalogue import MESSAGES, text
from collector.i18n.language import DEFAULT_LANGUAGE, LANGUAGES, Language, negotiate

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "MESSAGES", "Language", "negotiate", "text"]
