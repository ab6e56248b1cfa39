"""The Chat tab: layout.py builds and wires it, handlers.py answers its events, model.py holds the
app server's loaded model."""
