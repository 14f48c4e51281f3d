"""What every feature's routes share: the DB session, the clock and ``If-Match`` dependencies
(``deps``) and the mapping of domain errors to HTTP answers (``errors``). The app itself is
assembled in ``collector.app``; who the caller is, in ``collector.identity.deps``."""
