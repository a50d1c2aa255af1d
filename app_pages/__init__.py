"""Glassbox's pages, one file per page (listed in ``common.PAGES``), and the helpers they import (no
helper imports a page):

- ``common``: session state every page shares (every key that no widget owns is created there);
- ``editor_state``: the Model page editor's state (the spec being edited, the layer table's rows);
  ``model_design``, ``layer_table`` and ``model_files``: the Model page's widgets;
- ``run_data``: the training runs' data the Train and Inspect pages read (store, datasets, checkpoints);
  ``train_data``, ``train_settings``, ``train_run``, ``train_live``, ``train_results``, ``train_runs_list``:
  the Train page's widgets;
- ``replay``: the training-step slider with Play and a label at every checkpoint (Inspect and Train);
- ``inspect_target`` (the model at a training step) and ``inspect_ui`` (inputs, figures, downloads):
  what the Inspect pages share; ``shared_views``: inspections and figures computed once per server
  for the same model and input; ``canvas``: the drawing canvas;
- ``figures``: ``plotly_chart``, through which every page draws its Plotly figures (made for a
  projector in presenter mode), and ``columns`` (stacked in presenter mode); ``presenter_ui``: the
  presenter mode toggle, its larger text and closed sidebar;
- ``serving``: how the web server runs torch (one thread).
"""
