"""models.words: 'a' or 'an' by the sound of a model, layer or class name."""
import pytest

from models import presets
from models.words import article, with_article


@pytest.mark.parametrize("name, expected", [
    ("LSTM", "an LSTM"), ("RNN", "an RNN"), ("GRU", "a GRU"), ("CNN", "a CNN"), ("MLP", "an MLP"),
    ("Transformer", "a Transformer"), ("Vision Transformer", "a Vision Transformer"),
    ("act", "an act"), ("batchnorm", "a batchnorm"), ("dropout", "a dropout"), ("conv", "a conv"),
    ("albert", "an albert"), ("unit", "a unit"), ("hour", "an hour"), ("ellipse", "an ellipse"),
    ("8", "an 8"), ("1", "a 1"), ("11", "an 11"), ("18", "an 18"), ("80", "an 80"), ("100", "a 100"),
    ("x", "an x"), ("b", "a b"), ("", " ".join(["a", ""])),
])
def test_the_article_goes_by_the_sound(name, expected):
    assert with_article(name) == expected


def test_every_preset_family_gets_its_article():
    families = {presets.get(name).family() for name in presets.names()}
    said = {family: article(family) for family in families}
    assert said.get("LSTM", "an") == "an" and said.get("CNN", "a") == "a"
    assert all(said[f] == ("an" if f in ("LSTM", "RNN") else "a") for f in said), said


def test_the_weights_are_called_learned_only_once_trained():
    from models.meta import ModelMeta
    from models.words import weights_phrase
    untrained = weights_phrase(ModelMeta())
    assert "not been trained" in untrained and "learned" not in untrained.replace("nothing learned", "")
    assert "nothing learned yet" in weights_phrase(ModelMeta(dataset="digits", run_id="r", step=0), total_steps=44)
    early = weights_phrase(ModelMeta(dataset="digits", run_id="r", step=2), total_steps=440)
    assert early == "the weights after 2 of 440 steps (still close to the random ones it started from)"
    assert weights_phrase(ModelMeta(dataset="digits", run_id="r", step=220), total_steps=440) == \
        "the weights it has learned in 220 of 440 steps"
    trained = ModelMeta(dataset="digits", run_id="r", step=440)
    assert weights_phrase(trained) == "the weights it learned in 440 steps on digits"
    assert weights_phrase(ModelMeta(), pretrained=True) == "the weights it learned in pretraining"
