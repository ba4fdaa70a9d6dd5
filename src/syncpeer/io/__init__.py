"""asyncio drivers around the core: HTTP server and client, filesystem, sync loop, logs, CLI."""
