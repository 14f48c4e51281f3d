"""The central collector: ingest, alarm engine, tickets and SLA, NOC API and dashboard."""
