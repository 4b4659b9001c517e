"""The direction explorer: `stylediscover explore PATH` serves a page with a slider per direction over real
samples or an uploaded image (server.py), or writes a self-contained HTML file of precomputed frames (static.py)."""
