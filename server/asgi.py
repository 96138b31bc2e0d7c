"""ASGI entry point for uvicorn workers: settings from the environment."""

from server.app import create_app

app = create_app()
