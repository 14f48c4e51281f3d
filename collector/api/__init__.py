"""NOC API: FastAPI app, access control, live stream, dashboard, metrics."""
