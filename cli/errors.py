"""Errors the command line reports as one clear line and a non-zero exit, without a traceback."""


class UserError(Exception):
    """Something the user can fix: a bad file, a port in use, a missing binary."""
