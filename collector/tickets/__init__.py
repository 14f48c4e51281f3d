"""NOC tickets: lifecycle, SLA clock, operations log; one module per responsibility.

Read first: ``lifecycle.py`` (states and legal moves), ``transitions.py`` (``move``, the one
place a ticket's state changes), ``flows/`` (what alarm changes do to tickets).
"""
