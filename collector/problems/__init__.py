"""Problem records: recurring incidents with a common cause, proposed by the collector and
handled by the NOC to a root cause and a permanent fix."""
