"""App tests (Streamlit AppTest) for pretrained models: loaded from the Model page (the built-in
MiniLM, a folder), shown on the Attention and Attributions pages through the same hook names,
refused in plain words when they would run code or cannot be downloaded."""
from __future__ import annotations

import io
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from app_pages import common, model_files
from explain.attributions import attribute
from explain.inputs import input_context
from models.pretrained import BUILTIN_TEXT, load_pretrained, tokenize
from tests.app_helpers import figure, open_page, run, texts, values
from tests.test_pretrained import tiny  # noqa: F401 - the fixture of tiny model folders

SENTENCE = "The zorblax at the cinema was unexpectedly delightful"


def load_on_model_page(source: str | None = None):
    """The Model page, after clicking the built-in model's button (or loading ``source``)."""
    at = open_page("model")
    if source is None:
        at.button(key=model_files.LOAD_BUILTIN).click()
    else:
        at.text_input(key=model_files.PRETRAINED_SOURCE).set_value(source)
        run(at)
        at.button(key=model_files.LOAD_PRETRAINED).click()
    return run(at)


def test_the_builtin_minilm_shows_every_head_on_a_sentence_of_unseen_words():
    at = load_on_model_page()
    assert any(f"{BUILTIN_TEXT} · Transformer" in m and "pretrained" in m for m in texts(at.sidebar.markdown))
    at.switch_page("app_pages/inspect_attention.py")
    run(at)
    at.text_area(key="attention_text").set_value(SENTENCE)
    run(at)
    model = at.session_state[common.CURRENT_MODEL]
    ids, tokens, _ = tokenize(model, SENTENCE)
    _, cache = model.run_with_cache(ids.unsqueeze(0), names=["blocks.5.attn.pattern"])
    grid = [trace for trace in figure(at, "attention_grid")["data"] if trace["type"] == "heatmap"]
    assert len(grid) == 6 * 12
    np.testing.assert_allclose(values(grid[-1]["z"]), cache["blocks.5.attn.pattern"][0, 11].numpy(),
                               rtol=1e-4, atol=1e-6)
    head = figure(at, "attention_head_map")["data"][0]
    assert list(head["y"])[:4] == ["[CLS]", "the", "z", "##or"] and list(head["y"])[-1] == "[SEP]"
    assert tokens[0] == "[CLS]"
    assert any("has no classifier" in c for c in texts(at.caption))
    at.switch_page("app_pages/attributions.py")
    run(at)
    assert any("has no classifier" in i for i in texts(at.info))
    at.switch_page("app_pages/train.py")
    run(at)
    assert not any("does not train it" in i for i in texts(at.info))  # it is offered fine-tuning instead
    assert any(e.label.startswith(f"**Fine-tune {BUILTIN_TEXT}**") for e in at.expander)
    assert any("Trains 22,713,986 of 22,713,986 numbers" in c for c in texts(at.caption))  # MiniLM + a 2-class head


def test_a_classifier_from_a_folder_predicts_and_explains_each_token(tiny):  # noqa: F811
    at = load_on_model_page(str(tiny["bert"]))
    model = at.session_state[common.CURRENT_MODEL]
    assert model.spec.class_names == ["negative", "neutral", "positive"]
    at.switch_page("app_pages/attributions.py")
    run(at)
    at.text_area(key="attr_text").set_value("the film was good")
    run(at)
    ids, tokens, _ = tokenize(model, "the film was good")
    predicted = int(model(ids.unsqueeze(0)).argmax())
    expected = attribute(model, ids, predicted, "integrated_gradients").values
    bars = figure(at, "attr_tokens_0")["data"]
    drawn = np.concatenate([values(trace["y"]) for trace in bars if trace["type"] == "bar"])
    assert len(drawn) == len(tokens)
    np.testing.assert_allclose(np.sort(drawn), np.sort(expected), rtol=1e-4, atol=1e-6)
    at.switch_page("app_pages/inspect_attention.py")
    run(at)
    assert any(name in " ".join(texts(at.markdown)) for name in ("negative", "neutral", "positive"))


def test_a_gpt2_decoders_attention_is_causal(tiny):  # noqa: F811
    at = load_on_model_page(str(tiny["gpt2"]))
    at.switch_page("app_pages/inspect_attention.py")
    run(at)
    at.text_area(key="attention_text").set_value("the the the")
    run(at)
    pattern = values(figure(at, "attention_grid")["data"][0]["z"])
    assert pattern.shape[0] > 1 and np.allclose(np.triu(pattern, k=1), 0)  # nothing looks ahead
    assert any("its attention is causal" in c for c in texts(at.caption))


def test_a_folder_with_code_and_an_unreachable_id_are_refused_in_words(tiny, tmp_path, monkeypatch):  # noqa: F811
    folder = tmp_path / "my-model"
    folder.mkdir()
    for item in tiny["bert"].iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    (folder / "modeling_custom.py").write_text("raise SystemExit('this must never run')\n")
    at = load_on_model_page(str(folder))
    assert any("ships its own Python code" in e for e in texts(at.error)), texts(at.error)

    def no_network(*args, **kwargs):
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = load_on_model_page("someone/no-such-model")
    assert any("offline" in e and BUILTIN_TEXT in e for e in texts(at.error)), texts(at.error)
    assert at.session_state[common.CURRENT_MODEL].spec.name == common.DEFAULT_PRESET  # nothing lost


def test_the_wrapper_is_what_transformers_computes():
    """The reference the pages rely on, in brief (tests/test_pretrained.py checks every layer)."""
    from transformers import AutoModel

    from models.pretrained import builtin_text_folder

    model = load_pretrained(BUILTIN_TEXT)
    ids, _, _ = tokenize(model, SENTENCE)
    reference = AutoModel.from_pretrained(builtin_text_folder(), attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(input_ids=ids.unsqueeze(0), output_attentions=True).attentions[2]
    _, cache = model.run_with_cache(ids.unsqueeze(0), names=["blocks.2.attn.pattern"])
    torch.testing.assert_close(cache["blocks.2.attn.pattern"], expected, rtol=1e-5, atol=1e-6)


# ---- image models ----------------------------------------------------------------------------
from tests.test_pretrained_vision import folders  # noqa: E402,F401 - the fixture of tiny ResNet / ViT folders


def upload_picture(at, page: str):
    at.button_group(key=f"{page}_source").set_value("upload")
    run(at)
    picture = Image.new("RGB", (60, 40), (200, 30, 30))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    at.file_uploader(key=f"{page}_upload").upload("red.png", buffer.getvalue())
    return run(at), picture


def test_a_pretrained_resnet_shows_its_stages_on_a_picture(folders):  # noqa: F811
    at = load_on_model_page(str(folders["resnet"]))
    model = at.session_state[common.CURRENT_MODEL]
    at.switch_page("app_pages/inspect_cnn.py")
    run(at)
    at, picture = upload_picture(at, "cnn")
    assert any("own preprocessing" in c for c in texts(at.caption))
    x = input_context(model).preprocess(picture)
    _, cache = model.run_with_cache(x.unsqueeze(0))
    for name in model.stage_names():
        maps = [values(t["z"]) for t in figure(at, f"{name}_maps")["data"]]
        np.testing.assert_allclose(maps[0], cache[name][0, 0].numpy(), rtol=1e-4, atol=1e-5)
    at.switch_page("app_pages/attributions.py")
    run(at)
    at, _ = upload_picture(at, "attr")
    assert len([t for t in figure(at, "attr_grid")["data"] if t["type"] == "heatmap"]) == 3  # with Grad-CAM


def test_a_pretrained_vit_shows_its_class_tokens_attention(folders):  # noqa: F811
    at = load_on_model_page(str(folders["vit"]))
    model = at.session_state[common.CURRENT_MODEL]
    at.switch_page("app_pages/inspect_attention.py")
    run(at)
    at, _ = upload_picture(at, "attention")
    layers, heads = model.spec.transformer.num_layers, model.spec.transformer.num_heads
    assert len([t for t in figure(at, "attention_grid")["data"] if t["type"] == "heatmap"]) == layers * heads
    patches = [t for t in figure(at, "attention_patches")["data"] if t["type"] == "heatmap"]
    assert len(patches) == heads + 1 and not at.error


@pytest.mark.parametrize("key, page", [("resnet-bare", "inspect_cnn"), ("vit-bare", "inspect_attention"),
                                       ("vit-bare", "attributions")])
def test_image_models_without_a_classifier_are_shown_without_a_prediction(folders, key, page):  # noqa: F811
    at = load_on_model_page(str(folders[key]))
    at.switch_page(f"app_pages/{page}.py")
    run(at)
    if page == "attributions":
        assert any("no classifier" in i for i in texts(at.info))
        return
    at, _ = upload_picture(at, "cnn" if page == "inspect_cnn" else "attention")
    assert not at.error and at.get("plotly_chart")
    assert not [m for m in texts(at.markdown) if m.startswith("The model says")]


def test_twelve_by_twelve_heads_on_a_long_text_stay_light(tmp_path):
    """A BERT-base-shaped model (12 blocks × 12 heads, tiny widths) on a text longer than it reads:
    the text is cut with a note, and the all-heads grid draws 144 tiles of at most 32 tokens."""
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "good"]
    folder = tmp_path / "bert-12x12"
    BertModel(BertConfig(vocab_size=len(words), hidden_size=24, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=48, max_position_embeddings=80)).save_pretrained(folder)
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(folder)
    at = load_on_model_page(str(folder))
    at.switch_page("app_pages/inspect_attention.py")
    run(at)
    at.text_area(key="attention_text").set_value(" ".join(["the film was good"] * 30))  # 120 words
    run(at)
    assert any("the last" in c and "were left out" in c for c in texts(at.caption)), texts(at.caption)
    grid = [trace for trace in figure(at, "attention_grid")["data"] if trace["type"] == "heatmap"]
    assert len(grid) == 144 and values(grid[0]["z"]).shape == (32, 32)
    assert any("Only the first 32 of 80 tokens" in c for c in texts(at.caption))
