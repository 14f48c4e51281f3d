"""Why an enrolment was refused; the message says what to do."""


class EnrolmentError(Exception):
    """An enrolment that cannot be done as asked; nothing was written."""


class AlreadyEnrolled(EnrolmentError):
    """The identity already has broker credentials (use ``--rotate`` to replace them)."""


class NotEnrolled(EnrolmentError):
    """``--rotate`` for an identity that has no credentials to replace."""


class ReservedId(EnrolmentError):
    """An agent id that would be a collector's or the broker admin's user name."""
