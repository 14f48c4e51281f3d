"""Notifications to the NOC team and to clients (webhook, e-mail), logged so none goes twice."""
