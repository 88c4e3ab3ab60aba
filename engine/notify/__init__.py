"""Alerts that leave the process: apprise channels, routing, coalescing, heartbeat, summaries."""
