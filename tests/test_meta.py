"""ModelMeta: the typed record of a checkpoint's meta.json."""
from models.meta import ModelMeta


def test_a_training_meta_round_trips_and_reads_typed():
    document = {"dataset": "digits", "input_kind": "image", "input_shape": [1, 16, 16],
                "class_names": [str(i) for i in range(10)], "vocab": None,
                "normalization": {"mean": [0.5], "std": [0.25]}, "image_options": {"invert": True},
                "run_id": "r1", "step": 40, "epoch": 2}
    meta = ModelMeta.from_dict(document)
    assert meta.dataset == "digits" and meta.step == 40 and meta.input_shape == [1, 16, 16]
    assert meta.normalization == {"mean": [0.5], "std": [0.25]} and meta.pretrained is None
    assert ModelMeta.from_dict(meta.to_dict()) == meta
    assert {k: v for k, v in document.items() if v is not None} == meta.to_dict()


def test_unknown_keys_are_kept_and_damaged_fields_read_as_missing():
    meta = ModelMeta.from_dict({"checkpoint_format": {"version": 1}, "later_key": [1, 2],
                                "step": "forty", "class_names": "abc", "normalization": 3})
    assert meta.step is None and meta.class_names == [] and meta.normalization is None
    assert meta.extra == {"checkpoint_format": {"version": 1}, "later_key": [1, 2]}
    assert meta.to_dict() == {"checkpoint_format": {"version": 1}, "later_key": [1, 2]}


def test_an_empty_or_missing_meta_is_the_default_record():
    assert ModelMeta.from_dict(None) == ModelMeta() == ModelMeta.from_dict({})
    assert ModelMeta().to_dict() == {}


def test_with_run_copies():
    meta = ModelMeta(dataset="shapes")
    stamped = meta.with_run("r2", 7, 1)
    assert (stamped.run_id, stamped.step, stamped.epoch, stamped.dataset) == ("r2", 7, 1, "shapes")
    assert meta.run_id is None
