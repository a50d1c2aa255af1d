"""viz.activations.subplot_grid writes the layout plotly's make_subplots makes (the reference)."""
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from viz.activations import subplot_grid


@pytest.mark.parametrize("rows, cols, spacing", [(1, 1, None), (2, 3, None), (3, 8, (0.015, 0.08)), (12, 12, (0.01, 0.02))])
def test_grid_layout_equals_make_subplots(rows, cols, spacing):
    titles = [f"tile {i + 1}" for i in range(rows * cols - 1)] + [""]  # the last one untitled
    kwargs = {} if spacing is None else {"horizontal_spacing": spacing[0], "vertical_spacing": spacing[1]}
    reference = make_subplots(rows=rows, cols=cols, subplot_titles=titles, **kwargs).to_dict()["layout"]
    layout, cells = subplot_grid(rows, cols, titles, **kwargs)
    ours = go.Figure(layout=layout).to_dict()["layout"]
    for number in range(1, rows * cols + 1):
        suffix = "" if number == 1 else str(number)
        for axis in (f"xaxis{suffix}", f"yaxis{suffix}"):
            assert ours[axis]["domain"] == pytest.approx(reference[axis]["domain"], abs=1e-12), axis
            assert ours[axis]["anchor"] == reference[axis]["anchor"], axis
    last = "" if rows * cols == 1 else str(rows * cols)
    assert cells[0] == ("x", "y") and cells[-1] == (f"x{last}", f"y{last}")
    ours_titles, reference_titles = ours.get("annotations", []), reference.get("annotations", [])
    assert [a["text"] for a in ours_titles] == [a["text"] for a in reference_titles]
    for mine, theirs in zip(ours_titles, reference_titles):
        assert (mine["x"], mine["y"]) == pytest.approx((theirs["x"], theirs["y"]), abs=1e-12)
