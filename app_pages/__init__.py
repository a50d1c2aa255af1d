"""Glassbox's pages, one file per page (listed in app.py), and ``common``: what they share."""
