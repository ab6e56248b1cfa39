"""The Evaluate tab: layout.py builds and wires it, handlers.py runs predict in a subprocess and
shows its results."""
