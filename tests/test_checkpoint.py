"""Checkpoints: every preset survives a round trip bit for bit, and every bad file is refused.

The security tests build files that *would* run code if unpickled, prove that they do (the
reference), and then check that loading them through Glassbox raises CheckpointError and
leaves no trace.
"""
from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import random
import zipfile

import pytest
import safetensors.torch
import torch

from models import build_model, example_input, presets
from models import weights as weight_files
from models.checkpoint import CheckpointError, checkpoint_bytes, load_checkpoint, read_meta, save_checkpoint
from models.meta import ModelMeta

META = {
    "vocab": ["<pad>", "<unk>", "good", "bad", "très"],
    "class_names": ["negative", "positive"],
    "normalisation": {"mean": [0.5, 0.25, 0.125], "std": [0.2, 0.2, 0.2]},
}


def trained_like(name: str, seed: int = 0):
    """A preset whose every weight and buffer differs from a fresh build, as after training."""
    model = build_model(presets.get(name), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                tensor.fill_(7)
            elif key.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            else:
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=gen))
    return model


def assert_same_model(loaded, original):
    assert loaded.spec == original.spec
    want, got = original.state_dict(), loaded.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        assert torch.equal(got[key], want[key]), key
    x = example_input(original.spec)
    with torch.no_grad():
        assert torch.equal(loaded(x), original(x))
    assert not loaded.training
    assert all(p.device.type == "cpu" for p in loaded.parameters())


def zip_of(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def parts_of(model) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(checkpoint_bytes(model))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def refused(source, spec=None) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(source, spec)
    return str(info.value)


# ---- round trips ----------------------------------------------------------------------
@pytest.mark.parametrize("route", ["zip", "folder", "bytes"])
@pytest.mark.parametrize("name", presets.names())
def test_every_preset_round_trips(name, route, tmp_path):
    model = trained_like(name)
    if route == "zip":
        path = save_checkpoint(model, tmp_path / "model.zip", meta=META)
        assert path == tmp_path / "model.zip" and path.is_file()
        loaded = load_checkpoint(path)
    elif route == "folder":
        path = save_checkpoint(model, tmp_path / "run" / "step_100", meta=META)
        assert sorted(p.name for p in path.iterdir()) == ["meta.json", "model.safetensors", "spec.json"]
        loaded = load_checkpoint(str(path))
    else:
        loaded = load_checkpoint((checkpoint_bytes(model, meta=META), "x.zip"))
    assert_same_model(loaded, model)
    assert loaded.meta == ModelMeta.from_dict(META) and loaded.meta.to_dict() == META


def test_zip_holds_the_documented_files(tmp_path):
    model = trained_like("shapes-cnn")
    parts = parts_of(model)
    assert sorted(parts) == ["meta.json", "model.safetensors", "spec.json"]
    assert parts["spec.json"].decode() == model.spec.to_json()
    # The weights read back with safetensors alone, independently of load_checkpoint.
    weights = safetensors.torch.load(parts["model.safetensors"])
    assert weights.keys() == model.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert json.loads(parts["meta.json"])["checkpoint_format"] == {"name": "glassbox-checkpoint", "version": 1}


def test_bytes_are_reproducible_and_no_temp_files_are_left(tmp_path):
    model = trained_like("digits-cnn")
    assert checkpoint_bytes(model, meta=META) == checkpoint_bytes(model, meta=META)
    save_checkpoint(model, tmp_path / "a.zip")
    save_checkpoint(model, tmp_path / "a.zip")  # overwriting is fine
    save_checkpoint(model, tmp_path / "folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "folder"]
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["meta.json", "model.safetensors", "spec.json"]


def test_meta_comes_from_the_model_when_not_given():
    model = trained_like("sentiment-lstm")
    model.meta = ModelMeta.from_dict({"vocab": ["<pad>", "<unk>", "fine"], "mean": torch.tensor([0.5, 0.25])})
    loaded = load_checkpoint((checkpoint_bytes(model), "m.zip"))
    assert loaded.meta.to_dict() == {"vocab": ["<pad>", "<unk>", "fine"], "mean": [0.5, 0.25]}  # tensors become lists
    bare = trained_like("sentiment-lstm")
    assert load_checkpoint((checkpoint_bytes(bare), "m.zip")).meta == ModelMeta()


def test_meta_that_is_not_plain_data_is_refused():
    with pytest.raises(CheckpointError, match="plain data"):
        checkpoint_bytes(trained_like("digits-cnn"), meta={"transform": object()})


def test_read_meta_without_building(tmp_path):
    model = trained_like("digits-cnn")
    path = save_checkpoint(model, tmp_path / "m.zip", meta=META)
    assert read_meta(path) == META
    assert read_meta((path.read_bytes(), "m.zip")) == META


def test_a_zipped_folder_loads(tmp_path):
    # What "Compress" in a file manager makes: one top folder, sometimes macOS extras beside it.
    model = trained_like("sentiment-gru")
    parts = parts_of(model)
    entries = {f"mymodel/{name}": data for name, data in parts.items()}
    entries["__MACOSX/mymodel/._spec.json"] = b"\x00\x05\x16\x07"
    loaded = load_checkpoint((zip_of(entries), "mymodel.zip"))
    assert_same_model(loaded, model)


def test_a_hand_made_checkpoint_without_meta_loads():
    model = trained_like("shapes-vit")
    parts = parts_of(model)
    del parts["meta.json"]
    loaded = load_checkpoint((zip_of(parts), "bare.zip"))
    assert_same_model(loaded, model)
    assert loaded.meta == ModelMeta()


def test_loading_does_not_disturb_the_random_stream():
    data = checkpoint_bytes(trained_like("shapes-cnn"))
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    load_checkpoint((data, "m.zip"))
    assert torch.equal(torch.rand(4), expected)


# ---- weights alone --------------------------------------------------------------------
def test_safetensors_with_a_spec(tmp_path):
    model = trained_like("sentiment-transformer")
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    assert_same_model(load_checkpoint(path, spec=model.spec), model)
    assert load_checkpoint(path, spec=model.spec).meta == ModelMeta()
    assert_same_model(load_checkpoint((path.read_bytes(), "w.safetensors"), spec=model.spec), model)


def test_state_dicts_with_a_spec(tmp_path):
    model = trained_like("shapes-cnn")
    state = model.state_dict()
    plain = tmp_path / "plain.pt"
    torch.save(state, plain)
    assert_same_model(load_checkpoint(plain, spec=model.spec), model)
    # The usual training-script checkpoint: weights under a key, beside other things.
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "model_state_dict": state, "optimizer_state_dict": {"lr": 0.1}}, wrapped)
    assert_same_model(load_checkpoint(wrapped, spec=model.spec), model)
    # Saved from nn.DataParallel: every key starts with "module.".
    buffer = io.BytesIO()
    torch.save({f"module.{k}": v for k, v in state.items()}, buffer)
    assert_same_model(load_checkpoint((buffer.getvalue(), "dp.pt"), spec=model.spec), model)


@pytest.mark.parametrize("filename", ["w.safetensors", "w.pt", "w.pth"])
def test_weights_alone_need_a_spec(filename):
    model = trained_like("digits-cnn")
    state = model.state_dict()
    data = safetensors.torch.save(state) if filename.endswith("safetensors") else _torch_bytes(state)
    message = refused((data, filename))
    assert "holds only weights" in message and "spec" in message


def test_a_spec_passed_with_a_checkpoint_is_not_used():
    model = trained_like("digits-cnn")
    loaded = load_checkpoint((checkpoint_bytes(model), "m.zip"), spec=presets.get("shapes-cnn"))
    assert_same_model(loaded, model)


def _torch_bytes(obj, **kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **kwargs)
    return buffer.getvalue()


# ---- code in pickles ------------------------------------------------------------------
class OpensAFile:
    """Unpickling this calls open(marker, "w"): a stand-in for any code an attacker chooses."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


class RunsAShellCommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_a_pickled_whole_model_is_refused(tmp_path):
    model = trained_like("digits-cnn")
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    message = refused(path, spec=model.spec)
    assert "Python objects" in message and "run code" in message
    assert "torch.save(model.state_dict()" in message and ".safetensors" in message


@pytest.mark.parametrize("payload", [OpensAFile, RunsAShellCommand])
@pytest.mark.parametrize("packing", ["pickle-0", "pickle-2", "pickle-default", "torch-zip", "torch-legacy"])
def test_a_pickle_that_runs_code_is_refused_and_never_runs(payload, packing, tmp_path):
    marker = tmp_path / "pwned"
    evil = {"conv.0.conv.weight": torch.zeros(8, 1, 3, 3), "surprise": payload(marker)}
    if packing.startswith("pickle"):
        protocol = {"pickle-0": 0, "pickle-2": 2, "pickle-default": None}[packing]
        data = pickle.dumps(evil, protocol=protocol)
    else:
        data = _torch_bytes(evil, _use_new_zipfile_serialization=packing == "torch-zip")
    path = tmp_path / "evil.pt"
    path.write_bytes(data)
    spec = presets.get("digits-cnn")

    for source in (path, (data, "evil.pth")):
        message = refused(source, spec=spec)
        assert "Python objects" in message and "could run code" in message
        assert not marker.exists()

    # The reference: the same bytes do run code when unpickled the unsafe way.
    if packing.startswith("pickle"):
        pickle.loads(data)
    else:
        torch.load(io.BytesIO(data), weights_only=False)
    assert marker.exists()


def test_a_pickle_disguised_as_another_kind_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    data = _torch_bytes({"w": OpensAFile(marker)})
    spec = presets.get("digits-cnn")
    assert "not a Glassbox checkpoint" in refused((data, "evil.zip"))
    assert "not a valid .safetensors" in refused((data, "evil.safetensors"), spec=spec)
    parts = parts_of(trained_like("digits-cnn"))
    parts["model.safetensors"] = data
    assert "damaged" in refused((zip_of(parts), "evil.zip"))
    assert not marker.exists()


# ---- damaged and unknown files --------------------------------------------------------
def test_a_truncated_zip_is_refused():
    data = checkpoint_bytes(trained_like("digits-cnn"))
    message = refused((data[: len(data) // 2], "m.zip"))
    assert "not a valid .zip" in message and "damaged or incomplete" in message


def test_a_zip_with_a_corrupted_member_is_refused():
    data = bytearray(checkpoint_bytes(trained_like("digits-cnn")))
    middle = data.find(b"model.safetensors") + 5000  # inside the stored weights
    data[middle] ^= 0xFF
    assert "damaged or incomplete" in refused((bytes(data), "m.zip"))


@pytest.mark.parametrize("filename", ["m.zip", "m.pt", "m.safetensors"])
def test_random_bytes_are_refused(filename):
    data = random.Random(0).randbytes(4096)
    message = refused((data, filename), spec=presets.get("digits-cnn"))
    assert "not a valid" in message and "damaged or incomplete" in message


@pytest.mark.parametrize("filename", ["m.zip", "m.pt", "m.pth", "m.safetensors"])
def test_empty_files_are_refused(filename, tmp_path):
    path = tmp_path / filename
    path.write_bytes(b"")
    assert "empty" in refused(path, spec=presets.get("digits-cnn"))


@pytest.mark.parametrize("filename", ["m.pt", "m.safetensors"])
def test_truncated_weights_are_refused(filename):
    state = trained_like("digits-cnn").state_dict()
    data = _torch_bytes(state) if filename.endswith(".pt") else safetensors.torch.save(state)
    message = refused((data[: len(data) // 2], filename), spec=presets.get("digits-cnn"))
    assert "damaged or incomplete" in message


@pytest.mark.parametrize("filename", ["model.h5", "model.onnx", "model", "model.zip.exe"])
def test_unknown_kinds_of_file_are_refused(filename, tmp_path):
    path = tmp_path / filename
    path.write_bytes(b"whatever")
    message = refused(path)
    for kind in (".zip", ".safetensors", ".pt", ".pth", "state_dict"):
        assert kind in message


def test_a_missing_path_is_refused(tmp_path):
    assert "no file or folder" in refused(tmp_path / "nowhere.zip")


def test_a_pt_file_without_weights_is_refused():
    for content in ({"epoch": 3}, [torch.zeros(2)], {}, torch.zeros(3)):
        assert "holds no state_dict" in refused((_torch_bytes(content), "m.pt"), spec=presets.get("digits-cnn"))


def test_a_torch_file_named_zip_gets_a_hint():
    data = _torch_bytes(trained_like("digits-cnn").state_dict())
    message = refused((data, "weights.zip"))
    assert "torch.save" in message and ".pt" in message


# ---- hostile archives -----------------------------------------------------------------
@pytest.mark.parametrize("entry", ["../evil", "mymodel/../../evil", "/etc/evil", "..\\evil", "C:/evil"])
def test_entries_that_escape_the_archive_are_refused(entry):
    parts = parts_of(trained_like("digits-cnn"))
    parts[entry] = b"x"
    message = refused((zip_of(parts), "m.zip"))
    assert "unsafe path" in message and entry in message


def test_a_zip_bomb_is_refused():
    parts = parts_of(trained_like("digits-cnn"))
    parts["padding.bin"] = bytes(50 << 20)  # 50 MB of zeros deflates to about 50 KB
    data = zip_of(parts)
    assert len(data) < 1 << 20
    message = refused((data, "m.zip"))
    assert "zip bomb" in message and "padding.bin" in message


def test_an_archive_that_unpacks_too_large_is_refused(monkeypatch):
    data = checkpoint_bytes(trained_like("shapes-cnn"))
    monkeypatch.setattr(weight_files, "MAX_UNPACKED_BYTES", 100_000)
    assert "would unpack to" in refused((data, "m.zip"))


def test_files_over_the_size_limit_are_refused(monkeypatch, tmp_path):
    model = trained_like("shapes-cnn")
    path = save_checkpoint(model, tmp_path / "m.zip")
    monkeypatch.setattr(weight_files, "MAX_FILE_BYTES", 10_000)
    message = refused(path)
    assert "m.zip" in message and "up to" in message


def test_checkpoint_limits_fit_the_largest_buildable_model():
    from models.spec import MAX_PARAMETERS
    assert weight_files.MAX_FILE_BYTES > MAX_PARAMETERS * 4 and weight_files.MAX_UNPACKED_BYTES > MAX_PARAMETERS * 4


def test_missing_parts_are_named():
    parts = parts_of(trained_like("digits-cnn"))
    no_weights = {k: v for k, v in parts.items() if k != "model.safetensors"}
    message = refused((zip_of(no_weights), "m.zip"))
    assert "not a Glassbox checkpoint" in message and "no model.safetensors" in message
    assert "spec.json" in message and "meta.json" in message
    assert "no spec.json" in refused((zip_of({"readme.txt": b"hi"}), "m.zip"))


def test_a_folder_missing_its_spec_is_refused(tmp_path):
    folder = save_checkpoint(trained_like("digits-cnn"), tmp_path / "ckpt")
    (folder / "spec.json").unlink()
    assert "no spec.json" in refused(folder)


def test_two_models_in_one_zip_are_refused():
    parts = parts_of(trained_like("digits-cnn"))
    entries = {**{f"a/{k}": v for k, v in parts.items()}, **{f"b/{k}": v for k, v in parts.items()}}
    assert "more than one model" in refused((zip_of(entries), "m.zip"))


def test_a_newer_format_is_refused():
    parts = parts_of(trained_like("digits-cnn"))
    parts["meta.json"] = json.dumps({"checkpoint_format": {"name": "glassbox-checkpoint", "version": 99}}).encode()
    assert "newer Glassbox" in refused((zip_of(parts), "m.zip"))


# ---- bad specs ------------------------------------------------------------------------
def test_a_spec_that_is_not_json_is_refused():
    parts = parts_of(trained_like("digits-cnn"))
    parts["spec.json"] = b"{not json"
    message = refused((zip_of(parts), "m.zip"))
    assert "spec.json" in message and "not valid JSON" in message


def test_a_spec_with_unknown_fields_is_refused():
    parts = parts_of(trained_like("digits-cnn"))
    spec = json.loads(parts["spec.json"])
    spec["colour"] = "blue"
    parts["spec.json"] = json.dumps(spec).encode()
    assert "unknown field(s): colour" in refused((zip_of(parts), "m.zip"))


def test_a_spec_that_cannot_be_built_is_refused_with_its_reasons():
    parts = parts_of(trained_like("digits-cnn"))
    spec = json.loads(parts["spec.json"])
    spec["layers"][0]["kernel"] = 99
    parts["spec.json"] = json.dumps(spec).encode()
    message = refused((zip_of(parts), "m.zip"))
    assert "cannot be built" in message and "kernel 99 is larger than its 16×16 input" in message


# ---- weights that do not fit ----------------------------------------------------------
def test_weights_of_another_cnn_are_refused_with_the_keys_named():
    digits = trained_like("digits-cnn")
    data = safetensors.torch.save(digits.state_dict())
    message = refused((data, "digits.safetensors"), spec=presets.get("shapes-cnn"))
    assert "do not fit the model 'shapes-cnn'" in message
    assert "Missing from the file" in message and "conv.0.batchnorm.weight" in message
    assert "Wrong shape" in message
    assert "conv.0.conv.weight: file has 8×1×3×3, the model needs 16×3×3×3" in message


def test_weights_with_another_channel_count_are_refused():
    digits = trained_like("digits-cnn")
    wider = presets.get("digits-cnn")
    wider.layers[0].channels = 16
    message = refused((_torch_bytes(digits.state_dict()), "digits.pt"), spec=wider)
    assert "conv.0.conv.weight: file has 8×1×3×3, the model needs 16×1×3×3" in message
    assert "conv.1.conv.weight: file has 16×8×3×3, the model needs 16×16×3×3" in message
    assert "Missing" not in message and "not in the model" not in message


def test_extra_keys_are_named_and_long_lists_are_cut():
    transformer = trained_like("sentiment-transformer")
    data = safetensors.torch.save(transformer.state_dict())
    message = refused((data, "t.safetensors"), spec=presets.get("digits-cnn"))
    assert "In the file but not in the model (31): blocks.0.attn.proj.bias; blocks.0.attn.proj.weight" in message
    assert "and 25 more" in message
    assert "Missing from the file (8)" in message and "and 2 more" in message


def test_weights_that_are_not_floats_are_refused():
    state = trained_like("digits-cnn").state_dict()
    state["fc.0.linear.bias"] = torch.zeros_like(state["fc.0.linear.bias"], dtype=torch.int64)
    message = refused((safetensors.torch.save(state), "w.safetensors"), spec=presets.get("digits-cnn"))
    assert "fc.0.linear.bias: file has int64 numbers, the model needs float32" in message


def test_half_precision_weights_load_as_float32():
    model = trained_like("digits-cnn")
    half = {k: v.half() for k, v in model.state_dict().items()}
    loaded = load_checkpoint((safetensors.torch.save(half), "w.safetensors"), spec=model.spec)
    assert all(torch.equal(loaded.state_dict()[k], v.float()) for k, v in half.items())


def test_a_checkpoint_whose_spec_was_edited_is_refused():
    parts = parts_of(trained_like("digits-cnn"))
    spec = json.loads(parts["spec.json"])
    spec["layers"][0]["channels"] = 12
    parts["spec.json"] = json.dumps(spec).encode()
    assert "conv.0.conv.weight: file has 8×1×3×3, the model needs 12×1×3×3" in refused((zip_of(parts), "m.zip"))


# ---- saving what cannot be saved ------------------------------------------------------
def test_only_glassbox_models_can_be_saved(tmp_path):
    with pytest.raises(CheckpointError, match="Only Glassbox models"):
        checkpoint_bytes(torch.nn.Linear(2, 2))


def test_a_model_that_drifted_from_its_spec_is_not_saved(tmp_path):
    model = trained_like("sentiment-rnn")
    model.embed.tokens = torch.nn.Embedding(300, 32)  # resized without updating the spec
    with pytest.raises(CheckpointError, match="embed.tokens.weight: file has 300×32, the model needs 256×32"):
        save_checkpoint(model, tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()


def test_saving_to_a_weights_file_name_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=".zip file or as a folder"):
        save_checkpoint(trained_like("digits-cnn"), tmp_path / "m.pt")


def test_a_model_whose_spec_was_broken_is_not_saved():
    model = trained_like("digits-cnn")
    model.spec.layers[0].kernel = 99
    with pytest.raises(CheckpointError, match="kernel 99 is larger"):
        checkpoint_bytes(model)
