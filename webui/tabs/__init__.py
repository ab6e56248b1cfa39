"""One module per tab; each exposes `build(ctx, lang)`."""
