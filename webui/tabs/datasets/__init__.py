"""The Datasets tab: layout.py builds and wires it, handlers.py answers its events, preview.py
shows records as training tokenizes them."""
