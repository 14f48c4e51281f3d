"""Who calls and what they may do: API users and their tokens, roles and the permission table,
what a client may see, and the caller's own ``/me``."""
