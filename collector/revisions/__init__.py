"""Revisions: what changed in the collector's data files (and later its inventory and rules
through the API), when, by whom, with the content and the diff — its configuration history."""
