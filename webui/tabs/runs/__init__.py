"""The Runs tab: layout.py builds and wires it, handlers.py answers its events."""
