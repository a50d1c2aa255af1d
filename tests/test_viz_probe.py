"""viz.probe: the live view's figures carry the arrays they were given."""
import numpy as np
import pytest

from viz.activations import probability_bars
from viz.probe import filters_figure, hidden_states_figure, prefix_predictions_figure


def test_grey_filters_are_signed_heatmaps_one_per_filter():
    filters = np.random.default_rng(0).normal(size=(8, 1, 3, 3))
    fig = filters_figure(filters, cols=4)
    assert len(fig.data) == 8 and all(t.type == "heatmap" for t in fig.data)
    np.testing.assert_array_equal(np.asarray(fig.data[2].z), filters[2, 0])
    assert fig.data[0].zmin == -fig.data[0].zmax  # centred on zero
    assert [a.text for a in fig.layout.annotations][:2] == ["filter 1", "filter 2"]


def test_colour_filters_are_pictures_and_others_are_averaged():
    rgb = filters_figure(np.random.default_rng(0).normal(size=(4, 3, 3, 3)))
    assert len(rgb.data) == 4 and all(t.type == "image" for t in rgb.data)
    many = np.random.default_rng(1).normal(size=(2, 5, 3, 3))
    fig = filters_figure(many)
    np.testing.assert_allclose(np.asarray(fig.data[1].z), many[1].mean(axis=0))
    with pytest.raises(ValueError, match="O, I, k, k"):
        filters_figure(np.zeros((3, 3)))


def test_averaged_filters_say_so_where_they_are_shown():
    """A filter of a later conv reads every map of the layer before; its tile is the mean over
    them, and the figure says so (issue 12, item 8). A grey or colour filter is shown as it is."""
    fig = filters_figure(np.random.default_rng(1).normal(size=(2, 5, 3, 3)))
    assert "mean" in fig.layout.title.text and "5 input channels" in fig.layout.title.text
    for as_is in (np.zeros((2, 1, 3, 3)), np.zeros((2, 3, 3, 3))):
        assert filters_figure(as_is).layout.title.text is None


@pytest.mark.parametrize("probabilities", [np.array([1.0, 0.0, 0.0]), np.array([0.5, 0.3, 0.2])])
def test_the_probability_axis_runs_from_0_to_100_percent_with_its_end_labelled(probabilities):
    """The axis reaches the largest bar and labels its end: a "100%" tick at the right edge is
    drawn half outside the plot, and Plotly hides a label that would pass the figure's edge, so
    the right margin must hold half of it (with 10 pixels the axis seemed to stop at 80%)."""
    fig = probability_bars(probabilities, ["a", "b", "c"])
    axis = fig.layout.xaxis
    assert tuple(axis.range) == (0, 1) and axis.tickformat == ".0%"
    assert list(axis.tickvals) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])  # 100% is a tick
    assert fig.layout.margin.r >= 20  # half of "100%" at Plotly's 12 px font is about 15 px
    assert list(fig.data[0].x) == sorted(probabilities, reverse=True)


def test_prefix_predictions_one_line_per_class_over_the_words():
    probabilities = np.array([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]])
    fig = prefix_predictions_figure(["not", "bad", "not"], probabilities, ["negative", "positive"])
    assert [t.name for t in fig.data] == ["negative", "positive"]
    assert list(fig.data[1].y) == [0.5, 0.8, 0.1]
    assert list(fig.data[0].x) == ["not", "bad", "not (3)"]  # repeated words stay apart
    with pytest.raises(ValueError):
        prefix_predictions_figure(["a"], probabilities, ["x", "y"])


def test_prefix_predictions_show_at_most_ten_classes():
    probabilities = np.full((2, 12), 1 / 12)
    assert len(prefix_predictions_figure(["a", "b"], probabilities, [str(i) for i in range(12)]).data) == 10


def test_hidden_states_have_a_column_per_word():
    hidden = np.arange(6.0).reshape(3, 2) - 3
    fig = hidden_states_figure(hidden, ["a", "b", "c"])
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), hidden.T)
    assert list(fig.data[0].x) == ["a", "b", "c"] and fig.data[0].zmin == -3
