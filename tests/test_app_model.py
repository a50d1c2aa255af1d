"""App tests (Streamlit AppTest) for the Model page: presets, editing, shapes, use, save and load."""
import copy
import io
from pathlib import Path

import pytest
import safetensors.torch
import torch
from streamlit.testing.v1 import AppTest

from app_pages import common, editor_state, layer_table, model_design, model_files
from models import build_model, presets
from models.checkpoint import checkpoint_bytes

APP = str(Path(__file__).resolve().parents[1] / "app.py")
FIRST_RUN_TIMEOUT_S = 60  # the first run imports torch and builds the default model


def model_parameter_count(spec) -> int:
    """The reference: parameters of the model actually built, not the spec's own arithmetic."""
    return sum(p.numel() for p in build_model(spec).parameters())


def summary(model) -> str:
    count = sum(p.numel() for p in model.parameters())
    return f"{model.spec.name} · {model.spec.family()} · {count:,} parameters"


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=FIRST_RUN_TIMEOUT_S).run()
    at.switch_page("app_pages/model.py").run()
    assert not at.exception
    return at


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception
    return at


def choose_preset(at: AppTest, name: str) -> AppTest:
    at.selectbox(key=model_design.PRESET).set_value(name)
    return run(at)


def shape_table(at: AppTest):
    (table,) = [frame for frame in at.dataframe if frame.editing_mode == "read_only"]
    return table.value


def table_total(at: AppTest) -> int:
    return int(shape_table(at)["Parameters"].sum())


def shown_total(at: AppTest) -> int:
    return int(at.metric[0].value.replace(",", ""))


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def sidebar(at: AppTest) -> list[str]:
    return [m.value for m in at.sidebar.markdown]


# ---- presets and the shape table --------------------------------------------------------
def test_page_opens_on_the_current_model(page):
    assert page.selectbox(key=model_design.PRESET).value == common.DEFAULT_PRESET
    assert page.text_input(key=model_design.NAME).value == common.DEFAULT_PRESET
    assert shown_total(page) == model_parameter_count(presets.get(common.DEFAULT_PRESET))
    assert not errors(page)


@pytest.mark.parametrize("name", presets.names())
def test_each_preset_shows_its_layer_table_and_total(page, name):
    choose_preset(page, name)
    spec = presets.get(name)
    expected = model_parameter_count(spec)
    assert table_total(page) == expected
    assert shown_total(page) == expected
    assert list(shape_table(page)["Layer"]) == [row.name for row in spec.layer_table()]
    assert list(shape_table(page)["Output shape"]) == ["×".join(map(str, row.output)) for row in spec.layer_table()]
    assert presets.describe(name) in [c.value for c in page.caption]
    assert not errors(page)
    assert not page.button(key=model_design.USE_MODEL).disabled
    # Choosing is not using: the sidebar still names the current model.
    assert sidebar(page) == ["digits-cnn · CNN · 18,346 parameters"]


@pytest.mark.parametrize("name, keys", [
    ("digits-cnn", ["edit_input_channels", "edit_input_height", "edit_input_width", model_design.NUM_CLASSES]),
    ("sentiment-lstm", ["edit_input_vocab_size", "edit_input_max_len", "edit_rnn_embed_dim", "edit_rnn_hidden_size",
                        "edit_rnn_num_layers", "edit_rnn_dropout", model_design.NUM_CLASSES]),
    ("sentiment-transformer", ["edit_input_vocab_size", "edit_input_max_len", "edit_transformer_d_model",
                               "edit_transformer_num_heads", "edit_transformer_num_layers",
                               "edit_transformer_mlp_ratio", "edit_transformer_dropout", model_design.NUM_CLASSES]),
    ("shapes-vit", ["edit_input_channels", "edit_input_height", "edit_input_width", "edit_transformer_d_model",
                    "edit_transformer_num_heads", "edit_transformer_num_layers", "edit_transformer_mlp_ratio",
                    "edit_transformer_dropout", "edit_transformer_patch_size", model_design.NUM_CLASSES]),
])
def test_the_editor_shows_the_settings_of_the_family(page, name, keys):
    choose_preset(page, name)
    assert [w.key for w in page.number_input] == keys
    assert bool(page.data_editor) == (name.endswith("cnn"))


def test_changing_a_value_updates_the_table(page):
    page.number_input(key=model_design.NUM_CLASSES).set_value(12)
    run(page)
    spec = presets.get("digits-cnn")
    spec.num_classes = 12
    spec.class_names = spec.class_names + ["10", "11"]  # the page numbers the new classes
    assert page.text_input(key=model_design.CLASS_NAMES).value == ", ".join(spec.class_names)
    assert table_total(page) == shown_total(page) == model_parameter_count(spec)
    assert not errors(page)


def test_rnn_settings_change_the_total(page):
    choose_preset(page, "sentiment-gru")
    page.selectbox(key="edit_rnn_cell").set_value("lstm")
    page.checkbox(key="edit_rnn_bidirectional").check()
    page.number_input(key="edit_rnn_num_layers").set_value(2)
    run(page)
    spec = presets.get("sentiment-gru")
    spec.rnn.cell, spec.rnn.bidirectional, spec.rnn.num_layers = "lstm", True, 2
    assert shown_total(page) == model_parameter_count(spec)


# ---- problems are shown in words ---------------------------------------------------------
def test_an_image_too_small_for_the_layers_is_explained(page):
    page.number_input(key="edit_input_height").set_value(1)
    page.number_input(key="edit_input_width").set_value(1)
    run(page)
    spec = presets.get("digits-cnn")
    spec.input.height = spec.input.width = 1
    (message,) = spec.validate()
    assert "larger than its 1×1 input" in message
    assert errors(page) == [message[0].upper() + message[1:]]
    assert page.button(key=model_design.USE_MODEL).disabled
    assert not page.metric  # no total for a model that cannot be built


def test_a_kernel_larger_than_its_input_is_explained(page):
    choose_preset(page, "digits-cnn")
    at_state = {"edited_rows": {0: {"kernel": 40}}, "added_rows": [], "deleted_rows": []}
    page.session_state[layer_table.LAYER_EDITOR] = at_state
    run(page)
    assert errors(page) == ["Layer 1 (conv.0): kernel 40 is larger than its 16×16 input (with padding 1)"]
    assert page.button(key=model_design.USE_MODEL).disabled


def test_heads_that_do_not_divide_the_width_are_explained(page):
    choose_preset(page, "sentiment-transformer")
    page.number_input(key="edit_transformer_num_heads").set_value(3)
    run(page)
    assert errors(page) == ["Transformer: d_model 64 does not split evenly into 3 heads"]
    page.number_input(key="edit_transformer_num_heads").set_value(8)
    run(page)
    assert not errors(page)


def test_a_patch_size_that_does_not_divide_the_image_is_explained(page):
    choose_preset(page, "shapes-vit")
    page.number_input(key="edit_transformer_patch_size").set_value(5)
    run(page)
    assert errors(page) == ["Transformer: the 32×32 image does not split into 5×5 patches"]


def test_a_blank_name_is_explained(page):
    page.text_input(key=model_design.NAME).set_value("   ")
    run(page)
    assert errors(page) == ["The model needs a name"]
    assert page.button(key=model_design.USE_MODEL).disabled


# ---- the CNN layer table ------------------------------------------------------------------
def test_layer_rows_can_be_edited_added_and_deleted(page):
    page.session_state[layer_table.LAYER_EDITOR] = {
        "edited_rows": {0: {"channels": 4}},
        "added_rows": [{"type": "dropout", "p": 0.25}],
        "deleted_rows": [7],  # the last act
    }
    run(page)
    spec = presets.get("digits-cnn")
    spec.layers[0].channels = 4
    spec.layers[7].type, spec.layers[7].p = "dropout", 0.25
    assert [r.name for r in spec.layer_table()][-2] == "fc.0.dropout"
    assert not errors(page)
    assert shown_total(page) == model_parameter_count(spec)


def test_move_up_and_down_reorder_the_layers(page):
    page.selectbox(key=layer_table.MOVE_ROW).set_value(1)  # the act after conv.0
    page.button(key=layer_table.MOVE_DOWN).click()
    run(page)
    assert list(page.data_editor[0].value["type"])[:3] == ["conv", "pool", "act"]
    assert page.selectbox(key=layer_table.MOVE_ROW).value == 2  # the moved layer stays selected
    assert not errors(page)
    page.button(key=layer_table.MOVE_UP).click()
    run(page)
    assert list(page.data_editor[0].value["type"])[:3] == ["conv", "act", "pool"]
    assert page.button(key=layer_table.MOVE_UP).disabled is False
    page.selectbox(key=layer_table.MOVE_ROW).set_value(0)
    run(page)
    assert page.button(key=layer_table.MOVE_UP).disabled


def test_a_layer_in_the_wrong_place_is_explained(page):
    page.selectbox(key=layer_table.MOVE_ROW).set_value(0)
    page.button(key=layer_table.MOVE_DOWN).click()  # act before any conv
    run(page)
    assert errors(page) == ["Layer 1 (act): an act layer must follow a conv, pool or fc layer"]


def test_edits_survive_a_visit_to_another_page(page):
    page.number_input(key="edit_input_height").set_value(20)
    page.session_state[layer_table.LAYER_EDITOR] = {"edited_rows": {0: {"channels": 6}}, "added_rows": [], "deleted_rows": []}
    run(page)
    page.switch_page("app_pages/home.py").run()
    page.switch_page("app_pages/model.py")
    run(page)
    assert page.number_input(key="edit_input_height").value == 20
    assert page.data_editor[0].value["channels"].iloc[0] == 6
    spec = presets.get("digits-cnn")
    spec.input.height, spec.layers[0].channels = 20, 6
    assert shown_total(page) == model_parameter_count(spec)


def test_start_again_from_the_preset_undoes_edits(page):
    page.number_input(key="edit_input_height").set_value(20)
    run(page)
    page.button(key=model_design.RESET_PRESET).click()
    run(page)
    assert page.number_input(key="edit_input_height").value == 16


# ---- Use this model -----------------------------------------------------------------------
def test_use_this_model_makes_it_current(page):
    choose_preset(page, "shapes-vit")
    page.button(key=model_design.USE_MODEL).click()
    run(page)
    expected = "shapes-vit · Vision Transformer · 91,236 parameters"
    assert sidebar(page) == [expected]
    assert [s.value for s in page.success] == [f"Now using {expected}."]
    current = page.session_state[common.CURRENT_MODEL]
    assert current.spec.name == "shapes-vit"
    page.switch_page("app_pages/home.py").run()
    assert sidebar(page) == [expected]


def test_use_this_model_builds_the_edited_design(page):
    page.text_input(key=model_design.NAME).set_value("my-cnn")
    page.number_input(key="edit_input_channels").set_value(3)
    run(page)
    page.button(key=model_design.USE_MODEL).click()
    run(page)
    spec = presets.get("digits-cnn")
    spec.name, spec.input.channels = "my-cnn", 3
    assert sidebar(page) == [f"my-cnn · CNN · {model_parameter_count(spec):,} parameters"]


# ---- save and load ------------------------------------------------------------------------
def test_the_current_model_can_be_downloaded(page):
    button = page.download_button(key=model_files.DOWNLOAD)
    assert button.label == "Download the current model"
    assert button.proto.url.endswith(".zip")
    model = page.session_state[common.CURRENT_MODEL]
    assert model_files.checkpoint_file_name(model) == "digits-cnn.zip"


def test_an_uploaded_checkpoint_becomes_the_current_model(page):
    model = build_model(presets.get("sentiment-lstm"), seed=7)
    page.file_uploader(key=model_files.UPLOAD).upload("lstm.zip", checkpoint_bytes(model), "application/zip")
    run(page)
    assert [s.value for s in page.success] == [f"Loaded {summary(model)} from lstm.zip. It is now the current model."]
    assert sidebar(page) == [summary(model)]
    loaded = page.session_state[common.CURRENT_MODEL]
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    # The editor now shows the loaded design ...
    assert page.text_input(key=model_design.NAME).value == "sentiment-lstm"
    assert page.number_input(key="edit_rnn_hidden_size").value == 64
    # ... and a later edit is not overwritten by loading the same file again.
    page.number_input(key="edit_rnn_hidden_size").set_value(32)
    run(page)
    run(page)
    assert page.number_input(key="edit_rnn_hidden_size").value == 32
    assert page.session_state[common.CURRENT_MODEL] is loaded


def test_a_broken_upload_is_explained_and_the_page_keeps_working(page):
    page.file_uploader(key=model_files.UPLOAD).upload("broken.zip", b"this is not a zip file", "application/zip")
    run(page)
    assert errors(page) == ["'broken.zip' is not a valid .zip file; it may be damaged or incomplete."]
    assert sidebar(page) == ["digits-cnn · CNN · 18,346 parameters"]
    choose_preset(page, "shapes-cnn")
    assert shown_total(page) == model_parameter_count(presets.get("shapes-cnn"))


def test_bare_weights_are_loaded_with_the_spec_picked_for_them(page):
    model = build_model(presets.get("sentiment-gru"), seed=1)
    weights = safetensors.torch.save(model.state_dict())
    page.file_uploader(key=model_files.UPLOAD).upload("gru.safetensors", weights)
    run(page)
    assert not page.success and not errors(page)  # nothing is loaded before a spec is picked
    picker = page.selectbox(key=model_files.UPLOAD_SPEC)
    assert picker.label == "These weights belong to"
    assert picker.value == model_files.CURRENT_SPEC_CHOICE
    page.button(key=model_files.LOAD_WEIGHTS).click()
    run(page)
    (message,) = errors(page)
    assert message.startswith("The weights in 'gru.safetensors' do not fit the model 'digits-cnn' (CNN).")
    page.selectbox(key=model_files.UPLOAD_SPEC).set_value("sentiment-gru")
    page.button(key=model_files.LOAD_WEIGHTS).click()
    run(page)
    assert [s.value for s in page.success] == [f"Loaded {summary(model)} from gru.safetensors. It is now the current model."]
    assert sidebar(page) == [summary(model)]


def test_a_state_dict_can_be_loaded_for_the_current_model(page):
    model = build_model(presets.get("digits-cnn"), seed=5)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    page.file_uploader(key=model_files.UPLOAD).upload("digits.pt", buffer.getvalue())
    run(page)
    page.button(key=model_files.LOAD_WEIGHTS).click()
    run(page)
    assert [s.value for s in page.success] == [f"Loaded {summary(model)} from digits.pt. It is now the current model."]
    loaded = page.session_state[common.CURRENT_MODEL]
    assert torch.equal(loaded.state_dict()["conv.0.conv.weight"], model.state_dict()["conv.0.conv.weight"])


# ---- the load function on its own ---------------------------------------------------------
def test_load_checkpoint_file_returns_the_model_and_a_message():
    model = build_model(presets.get("shapes-cnn"), seed=2)
    loaded, message = model_files.load_checkpoint_file(checkpoint_bytes(model), "shapes.zip", None)
    assert loaded is not None and loaded.spec.name == "shapes-cnn"
    assert message == f"Loaded {summary(model)} from shapes.zip. It is now the current model."


def test_load_checkpoint_file_refuses_in_words():
    loaded, message = model_files.load_checkpoint_file(b"garbage", "model.zip", None)
    assert loaded is None
    assert message == "'model.zip' is not a valid .zip file; it may be damaged or incomplete."
    spec = copy.deepcopy(presets.get("digits-cnn"))
    loaded, message = model_files.load_checkpoint_file(b"garbage", "weights.safetensors", None)
    assert loaded is None and "pick the model spec it belongs to" in message
    loaded, message = model_files.load_checkpoint_file(b"garbage", "weights.safetensors", spec)
    assert loaded is None and "not a valid .safetensors file" in message
    loaded, message = model_files.load_checkpoint_file(b"garbage", "notes.txt", None)
    assert loaded is None and "cannot open 'notes.txt'" in message


# ---- issue 12: the picker keeps its choice; a chosen design is not the current model ------
NOT_CURRENT = "not the current model"


def infos(at: AppTest) -> list[str]:
    """The info boxes' texts as read: Markdown's escaping backslashes (before a name) dropped."""
    return [i.value.replace("\\", "") for i in at.info]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_the_preset_choice_survives_a_visit_to_another_page(page):
    choose_preset(page, "sentiment-lstm")
    page.switch_page("app_pages/train.py")
    run(page)
    page.switch_page("app_pages/model.py")
    run(page)
    assert page.selectbox(key=model_design.PRESET).value == "sentiment-lstm"
    assert presets.describe("sentiment-lstm") in captions(page)
    assert page.text_input(key=model_design.NAME).value == "sentiment-lstm"
    choose_preset(page, "digits-cnn")  # now really switches the design
    assert page.text_input(key=model_design.NAME).value == "digits-cnn"
    assert shown_total(page) == model_parameter_count(presets.get("digits-cnn"))


def test_a_chosen_preset_is_not_the_current_model_until_used(page):
    assert not [i for i in infos(page) if NOT_CURRENT in i]  # the page opens on the current model
    choose_preset(page, "sentiment-lstm")
    (note,) = [i for i in infos(page) if NOT_CURRENT in i]
    assert "sentiment-lstm" in note and "digits-cnn" in note and "Use this model" in note
    page.button(key=model_design.USE_MODEL).click()
    run(page)
    assert not [i for i in infos(page) if NOT_CURRENT in i]


def test_the_train_page_says_which_model_it_trains(page):
    choose_preset(page, "sentiment-lstm")
    page.switch_page("app_pages/train.py")
    run(page)
    (note,) = [i for i in infos(page) if NOT_CURRENT in i]
    assert "sentiment-lstm" in note and "digits-cnn" in note and "Use this model" in note
    page.switch_page("app_pages/model.py")
    run(page)
    page.button(key=model_design.USE_MODEL).click()
    run(page)
    page.switch_page("app_pages/train.py")
    run(page)
    assert not [i for i in infos(page) if NOT_CURRENT in i]


def trained_on_sentiment(name: str = "sentiment-lstm", vocab_size: int = 500):
    """The model training makes: the preset with its vocabulary and classes fitted to the data."""
    spec = presets.get(name)
    spec.input.vocab_size = vocab_size
    spec.class_names = ["negative", "positive"]
    model = build_model(spec)
    model.meta.dataset = "sentiment"
    return model


def test_a_trained_model_is_the_design_it_was_trained_from_and_its_count_is_explained(page):
    choose_preset(page, "sentiment-lstm")
    trained = trained_on_sentiment()
    page.session_state[common.CURRENT_MODEL] = trained
    run(page)
    assert not [i for i in infos(page) if NOT_CURRENT in i]
    design_count = model_parameter_count(presets.get("sentiment-lstm"))
    trained_count = sum(p.numel() for p in trained.parameters())
    assert design_count != trained_count
    assert shown_total(page) == design_count
    (note,) = [c for c in captions(page) if "vocabulary" in c and f"{trained_count:,}" in c]
    assert f"{design_count:,}" in note and "500 words" in note and "sentiment" in note


# ---- issue 12 item 14: the layer table shows only what applies ---------------------------
def layer_rows(at: AppTest):
    return at.data_editor[0].value


def test_a_new_layer_row_shows_only_what_applies_to_its_type(page):
    # What the browser sends for a row added with the old column defaults, its type set to conv.
    page.session_state[layer_table.LAYER_EDITOR] = {
        "edited_rows": {}, "deleted_rows": [],
        "added_rows": [{"type": "conv", "channels": 16, "kernel": 3, "stride": 1, "padding": 0,
                        "activation": "relu", "pool": "max", "p": 0.5}]}
    run(page)
    table = layer_rows(page)
    assert list(table.index) == list(range(1, 10))  # "#" numbers the new row too
    last = table.iloc[-1]
    assert last["type"] == "conv" and int(last["channels"]) == 16 and int(last["kernel"]) == 3
    assert last[["activation", "pool", "p"]].isna().all()  # what a conv does not read is empty
    # A row whose type needs settings it lacks gets them; the cells of other types stay empty.
    page.session_state[layer_table.LAYER_EDITOR] = {
        "edited_rows": {}, "deleted_rows": [], "added_rows": [{"type": "act"}, {"type": "dropout"}]}
    run(page)
    table = layer_rows(page)
    assert list(table.index) == list(range(1, 12))
    act, dropout = table.iloc[-2][editor_state.LAYER_COLUMNS], table.iloc[-1][editor_state.LAYER_COLUMNS]
    assert act["activation"] == "relu" and act.drop(["type", "activation"]).isna().all()
    assert dropout["p"] == pytest.approx(0.5) and dropout.drop(["type", "p"]).isna().all()


def test_the_layer_table_shows_empty_cells_as_empty(page, drawn_tables):
    run(page)
    (kwargs,) = [kwargs for _data, kwargs in drawn_tables if kwargs.get("key") == layer_table.LAYER_EDITOR][-1:]
    assert kwargs.get("placeholder") == ""  # not "None"


def test_a_conv_after_the_fully_connected_layers_says_use_move_up(page):
    page.session_state[layer_table.LAYER_EDITOR] = {
        "edited_rows": {}, "deleted_rows": [], "added_rows": [{"type": "conv"}]}
    run(page)
    (problem,) = errors(page)
    assert problem.startswith("Layer 9 (conv.2): conv layers must come before the fully connected layers")
    assert "Move up" in problem


# ---- issue 12 item 8: the shapes table shows every row ------------------------------------
@pytest.fixture
def drawn_tables(monkeypatch) -> list:
    """(data, keyword arguments) of every st.dataframe and st.data_editor call the page makes."""
    import streamlit
    drawn = []
    for name in ("dataframe", "data_editor"):
        def recording(data, *args, _original=getattr(streamlit, name), **kwargs):
            drawn.append((data, kwargs))
            return _original(data, *args, **kwargs)
        monkeypatch.setattr(streamlit, name, recording)
    return drawn


def test_the_shapes_table_is_as_tall_as_its_rows(page, drawn_tables):
    choose_preset(page, "shapes-cnn")  # 16 rows: more than a default-height table shows
    ((table, kwargs),) = [(data, kwargs) for data, kwargs in drawn_tables if kwargs.get("key") == "layer_shapes"][-1:]
    assert len(table) > 10
    assert kwargs.get("height") == "content"  # every row shown, no scrolling inside the table
