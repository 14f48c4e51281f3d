"""The change feed: alarm and ticket changes in a table, streamed live to the dashboard (SSE).

A table rather than an in-process queue so that every collector instance sees every change,
whichever instance made it, and a reconnecting browser resumes from its Last-Event-ID.
"""
