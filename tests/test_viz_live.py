"""viz.live: the Train page's live panels, built from a probe view of plain arrays."""
import numpy as np

from explain.probe import ProbeView
from viz.live import Panel, picture_panels, sentence_panels


def test_a_cnn_view_gives_the_picture_its_answer_the_filters_and_the_maps():
    view = ProbeView("cnn", ["a", "b"], np.array([0.3, 0.7]), filters=np.zeros((4, 1, 3, 3)),
                     feature_maps=np.zeros((4, 8, 8)), activations=np.ones((4, 8, 8)))
    rows = picture_panels(view, np.zeros((1, 8, 8)), "8", weights="its random starting weights")
    assert [[panel.width for panel in row] for row in rows] == [[2, 3], [1], [1]]
    assert rows[0][0].caption == "Shown: a picture labelled 8"  # not "a 8"
    assert rows[1][0].caption.startswith("The first layer's filters, its random starting weights: ")
    assert all(isinstance(panel, Panel) and panel.figure.data for row in rows for panel in row)


def test_a_sentence_view_gives_one_row_per_thing_it_has():
    tokens = ["the", "film"]
    rnn = ProbeView("rnn", ["neg", "pos"], np.array([0.4, 0.6]), tokens=tokens,
                    prefix_probabilities=np.full((2, 2), 0.5), hidden=np.zeros((2, 3)))
    assert [row[0].caption for row in sentence_panels(rnn)] == [
        "How the prediction changes word by word", "The hidden state after each word (one row per unit)"]
    transformer = ProbeView("transformer", ["neg", "pos"], np.array([0.4, 0.6]), tokens=tokens,
                            prefix_probabilities=np.full((2, 2), 0.5), attention=np.full((2, 2), 0.5),
                            attention_heads=np.full((4, 2, 2), 0.5), attention_tokens=tokens)
    assert sentence_panels(transformer)[1][0].caption == "Where each word looks in the last block (mean of 4 heads)"
