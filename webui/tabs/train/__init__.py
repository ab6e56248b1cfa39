"""The Train tab: layout.py builds and wires it, handlers.py answers its events, watch.py follows
the live run."""
