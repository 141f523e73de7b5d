"""Grant handlers that need the models: imported by path when the server is built (registry.py)."""
