"""The Export tab: layout.py builds and wires it, handlers.py answers its events and runs the
merge in a subprocess."""
