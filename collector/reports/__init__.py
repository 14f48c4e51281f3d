"""Reports: the monthly QoS/SLA review per client, as data, CSV and a readable page."""
