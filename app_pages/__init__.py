"""Glassbox's pages, one file per page (listed in ``common.PAGES``), and their helpers: ``common`` (session
state every page shares), ``model_ui``, ``train_ui`` and ``inspect_ui`` (one page's or the Inspect pages' widgets),
``canvas`` (the drawing canvas)."""
