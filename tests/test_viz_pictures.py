"""viz.pictures and viz.labels, the helpers several figures share: pictures become (H, W, 3)
uint8 for go.Image, and repeated words stay apart on a category axis."""
import numpy as np
import pytest

from viz.labels import unique_labels
from viz.pictures import rgb_of_chw, rgb_of_hwc


def test_repeated_words_get_their_position():
    assert unique_labels(["the", "cat", "the"]) == ["the", "cat", "the (3)"]  # the third word
    assert unique_labels(["a", "b"]) == ["a", "b"]
    # "x (1)" already taken by a real word: every label gets its position
    assert unique_labels(["x", "x", "x (2)"]) == ["x (1)", "x (2)", "x (2) (3)"]


def test_channels_first_values_are_stretched_to_uint8():
    grey = rgb_of_chw(np.array([[[-1.0, 0.0], [1.0, 1.0]]]))  # (1, 2, 2)
    assert grey.shape == (2, 2, 3) and grey.dtype == np.uint8
    assert grey[0, 0].tolist() == [0, 0, 0] and grey[1, 0].tolist() == [255, 255, 255]
    assert rgb_of_chw(np.zeros((3, 2, 2))).max() == 0  # a flat picture is black, not a division by zero


def test_channels_last_uint8_pictures_are_kept_and_others_stretched():
    colour = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert rgb_of_hwc(colour) is colour
    stretched = rgb_of_hwc(colour.astype(float))
    assert stretched.shape == (2, 2, 3) and stretched.max() == 255 and stretched.min() == 0
    np.testing.assert_array_equal(rgb_of_hwc(np.eye(2)), rgb_of_chw(np.eye(2)))
    with pytest.raises(ValueError, match="colour"):
        rgb_of_hwc(np.zeros((2, 2, 4)))
