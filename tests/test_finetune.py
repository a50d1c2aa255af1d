"""Fine-tuning a pretrained encoder (training.finetune, models.pretrained.finetuned), offline, on a
tiny random BERT saved to a temporary folder as tests/test_pretrained.py's ``tiny`` fixture does.

References: the base folder's own safetensors (what must not change, byte for byte), an
uninterrupted run's weights (what a stopped and resumed one must end on), the in-memory model's
logits (what a reloaded checkpoint must give), and the learning-rate formula by hand.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np

import pytest
import safetensors.torch
import torch
from transformers import BertConfig, BertModel, BertTokenizer

from models.checkpoint import load_checkpoint
from models.pretrained import load_pretrained
from models.pretrained.finetuned import (block_parameters, finetuned_zip, freeze, head_parameters, save_finetuned,
                                         start_model)
from training import finetune, finetune_run
from training.finetune import Recipe
from training.hyperparameters import Hyperparameters
from training.trainer import Callback, Trainer

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "movie", "was", "not", "bad", "good",
         "and", "acting", ",", "plot", "is", "very", "a"]
FILLER = ["the", "film", "movie", "was", "and", "acting", "plot", "is", "very", "a"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A bare 2-block BERT encoder (no head) with its WordPiece tokenizer, as a model folder."""
    folder = tmp_path_factory.mktemp("base") / "tiny-bert"
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(WORDS), num_hidden_layers=2, num_attention_heads=2, hidden_size=32,
                                 intermediate_size=64, max_position_embeddings=64))
    model.save_pretrained(folder)
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)
    return folder


def sentences(n=96, seed=0):
    """Positive exactly when 'good' is in the sentence: a rule a tiny encoder can learn."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 7))]
        if i % 2:
            words.insert(rng.randrange(len(words)), "good")
        texts.append(" ".join(words))
        labels.append(i % 2)
    return "keyword", texts, labels, ["negative", "positive"], "keyword sentences", []


def data_for(model):
    return finetune.finetune_dataset(model.tokenizer, *sentences(), model_max_len=model.spec.input.max_len)


class Collect(Callback):
    def __init__(self, stop_after_step=None):
        self.steps, self.checkpoints, self.optimizer_states, self.stop_after_step = [], {}, {}, stop_after_step
        self.records = []

    def on_metrics(self, record):
        self.records.append(record)
        if record["type"] == "train":
            self.steps.append(record["step"])

    def on_checkpoint(self, step, epoch, model, optimizer_state):
        self.checkpoints[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.optimizer_states[step] = optimizer_state

    def should_stop(self):
        return self.stop_after_step is not None and bool(self.steps) and self.steps[-1] >= self.stop_after_step


def trained(base, recipe: Recipe, hp: Hyperparameters, callback=None, model=None, start_step=0, optimizer_state=None):
    """A fine-tune in this process, as the worker runs it (start_run_model, trainer_options, Trainer)."""
    model = model or finetune_run.start_run_model(recipe.to_dict(), ["negative", "positive"], hp.seed, "tiny")
    dataset = data_for(model)
    callback = callback or Collect()
    trainer = Trainer(model, dataset, hp, [callback], log_every_s=0.0,
                      **finetune_run.trainer_options(model, recipe.to_dict(), hp))
    return trainer, trainer.fit(start_step, optimizer_state), callback


HP = Hyperparameters(optimizer="adamw", lr=1e-3, batch_size=16, epochs=2, seed=3)


def base_weights(base) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(base / "model.safetensors"))


def test_head_only_changes_only_the_head(base):
    recipe = Recipe(base=str(base), train="head", head_lr=1e-2)
    trainer, result, _ = trained(base, recipe, HP)
    assert result.status == "finished"
    state = trainer.model.hf.state_dict()
    head = set(head_parameters(trainer.model))
    assert head == {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"}
    for name, tensor in base_weights(base).items():  # the saved base: byte for byte
        mine = state["bert." + name.removeprefix("bert.")]
        if "bert." + name.removeprefix("bert.") in head:
            continue
        assert mine.numpy().tobytes() == tensor.numpy().tobytes(), name
    start = finetune_run.start_run_model(recipe.to_dict(), ["negative", "positive"], HP.seed, "tiny").hf.state_dict()
    assert not torch.equal(state["classifier.weight"], start["classifier.weight"])  # the head did learn
    assert not torch.equal(state["bert.pooler.dense.weight"], start["bert.pooler.dense.weight"])


def test_the_top_block_changes_only_that_block_and_the_head(base):
    recipe = Recipe(base=str(base), train="top", top_blocks=1)
    trainer, _, callback = trained(base, recipe, HP)
    before, after = callback.checkpoints[0], trainer.model.state_dict()
    top = {"hf." + name for name in block_parameters(trainer.model, 1)}
    head = {"hf." + name for name in head_parameters(trainer.model)}
    assert top and all(".layer.1." in name for name in top)
    for name, tensor in after.items():
        if name in top | head:
            continue
        assert tensor.numpy().tobytes() == before[name].numpy().tobytes(), name  # block 1 of 2 and the embeddings
    assert all(not torch.equal(after[name], before[name]) for name in top if name.endswith("weight"))


def test_freeze_counts_what_trains_and_plan_says_it_before_training(base):
    model = start_model(str(base), ["a", "b", "c"], seed=0)
    assert model.spec.num_classes == 3 and model.hf.config.id2label == {0: "a", 1: "b", 2: "c"}
    everything = sum(p.numel() for p in model.hf.parameters())
    head = sum(p.numel() for p in head_parameters(model).values())
    block = sum(p.numel() for p in block_parameters(model, 1).values())
    bare = load_pretrained(str(base))  # the encoder without a head: counted as it will be, with its new head
    assert finetune.parameter_counts(bare, 3, Recipe(str(base), "head")) == (everything, head) and head == freeze(model, "head")
    assert finetune.parameter_counts(bare, 3, Recipe(str(base), "top", 1))[1] == head + block == freeze(model, "top", 1)
    assert finetune.parameter_counts(bare, 3, Recipe(str(base), "all"))[1] == everything == freeze(model, "all")
    assert head == 32 * 32 + 32 + 32 * 3 + 3  # the pooler and the new 3-class layer, by hand
    plan = finetune.plan_for(bare, data_for(model), HP, Recipe(str(base), "all"))
    assert plan.parameters == everything - 32 * 3 - 3 + 32 * 2 + 2 and plan.trained == plan.parameters  # 2 classes
    assert plan.memory_bytes > 16 * everything  # weights, gradients and AdamW's moments at least
    assert "MB of memory" in plan.words()


def test_a_run_that_would_not_fit_is_refused_in_words(base, monkeypatch):
    model = load_pretrained(str(base))
    monkeypatch.setattr(finetune, "available_memory", lambda device="auto": 10 * 2**20)
    with pytest.raises(finetune.FinetuneError, match="needs about .* MB of memory and only 10 MB is free"):
        finetune.submit(model, data_for(model), HP, Recipe(str(base)))
    monkeypatch.setattr(finetune, "available_memory", lambda device="auto": None)
    monkeypatch.setattr(finetune, "free_disk", lambda: 2**20)
    plan = finetune.plan_for(model, data_for(model), HP, Recipe(str(base)))
    assert plan.disk_bytes == plan.checkpoint_bytes * plan.checkpoints + 8 * plan.trained  # weights + AdamW's state
    with pytest.raises(finetune.FinetuneError, match="MB of checkpoints and only 1 MB of disk is free"):
        finetune.submit(model, data_for(model), HP, Recipe(str(base)))


def test_a_checkpoint_reloads_offline_with_the_same_logits(base, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    trainer, _, _ = trained(base, Recipe(base=str(base), train="all"), HP)
    model = trainer.model.eval()
    ids = data_for(model).x_val[:8]
    with torch.no_grad():
        expected = model(ids)
    folder = save_finetuned(model, tmp_path / "step_4", meta={"dataset": "keyword", "run_id": "r", "step": 4})
    assert {"config.json", "model.safetensors", "meta.json"} <= {p.name for p in folder.iterdir()}
    assert not [p for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".py")]
    for loaded in (load_checkpoint(folder), load_checkpoint((finetuned_zip(model), "tiny.zip"))):
        with torch.no_grad():
            torch.testing.assert_close(loaded(ids), expected, rtol=0, atol=1e-6)
        assert loaded.meta.pretrained == str(base) and loaded.spec.class_names == ["negative", "positive"]
    assert load_checkpoint(folder).meta.step == 4


def test_stop_and_resume_land_on_the_weights_of_an_uninterrupted_run(base, tmp_path):
    recipe = Recipe(base=str(base), train="top", top_blocks=1)
    hp = Hyperparameters(optimizer="adamw", lr=1e-3, batch_size=16, epochs=3, seed=5, schedule="cosine")
    whole, whole_result, _ = trained(base, recipe, hp)
    stopping = Collect(stop_after_step=5)
    first, result, _ = trained(base, recipe, hp, stopping)
    assert result.status == "stopped" and 5 <= result.step < whole_result.total_steps
    saved = save_finetuned(first.model, tmp_path / "stopped")  # resumed from its checkpoint folder, as the worker does
    resumed, end, _ = trained(base, recipe, hp, model=load_checkpoint(saved), start_step=result.step,
                              optimizer_state=stopping.optimizer_states[result.step])
    assert end.status == "finished" and end.step == whole_result.total_steps
    for name, tensor in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)


def test_the_head_keeps_its_own_learning_rate_under_a_schedule(base):
    recipe = Recipe(base=str(base), train="all", head_lr=1e-2)
    hp = Hyperparameters(optimizer="adamw", lr=1e-3, batch_size=16, epochs=1, seed=0, schedule="cosine")
    trainer, _, _ = trained(base, recipe, hp)
    rates = sorted(group["lr"] / group["lr_scale"] for group in trainer.optimizer.param_groups)
    assert rates[0] == pytest.approx(rates[1])  # both groups follow the same schedule
    scales = sorted(group["lr_scale"] for group in trainer.optimizer.param_groups)
    assert scales == pytest.approx([1.0, 10.0])


def test_a_fine_tune_runs_through_the_jobs_and_its_checkpoints_load(base, make_jobs, monkeypatch, backend_name):
    """Locally, and through Ray (the run's token ids go to the actor as bytes, its checkpoints come back as
    files; the base folder is read on the actor's machine, here the same one)."""
    from training import jobs as job_module

    jobs = make_jobs()
    assert jobs.backend.name == backend_name
    monkeypatch.setattr(job_module, "default_jobs", lambda: jobs)
    model = load_pretrained(str(base))
    dataset = data_for(model)
    hp = Hyperparameters(optimizer="adamw", lr=1e-3, batch_size=16, epochs=1, seed=1)
    run_id = finetune.submit(model, dataset, hp, Recipe(base=str(base), train="head"))
    status = jobs.wait(run_id, timeout_s=240)
    assert status.status == "finished", status.message
    record = jobs.store.read(run_id)
    assert record.extra["finetune"]["train"] == "head"
    steps = jobs.store.checkpoint_steps(run_id)
    assert steps[0] == 0 and steps[-1] == status.total_steps
    first, last = jobs.store.load_model(run_id, 0), jobs.store.load_model(run_id)
    assert first.meta.run_id == run_id and last.meta.step == status.total_steps
    encoder = [n for n in first.hf.state_dict() if n.startswith("bert.encoder.")]
    assert encoder and all(torch.equal(first.hf.state_dict()[n], last.hf.state_dict()[n]) for n in encoder)
    assert not torch.equal(first.hf.classifier.weight, last.hf.classifier.weight)


def test_the_train_page_offers_fine_tuning_for_a_pretrained_model_instead_of_declining(base):
    from app_pages import train_finetune
    from tests.app_helpers import open_page, texts

    at = open_page("train", model=load_pretrained(str(base)))
    assert not any("does not train" in text for text in texts(at.info))
    assert any(e.label.startswith("**Fine-tune tiny-bert**") for e in at.expander)
    assert at.button(key=train_finetune.START).disabled is False
    assert at.radio(key=train_finetune.TRAIN_PART).value == "all"
    said = " ".join(texts(at.caption))
    assert "MB of memory" in said and "1,200 to train on, 300 to check on · 2 classes" in said
    at.radio(key=train_finetune.TRAIN_PART).set_value("top").run()
    assert at.number_input(key=train_finetune.TOP_BLOCKS).value == 2


def finetuned_run(base, home) -> tuple:
    """A finished fine-tune run in the store at ``home``, as the worker leaves one: (store, run_id, final step)."""
    from training.record import RunProgress, RunRecord, RunState
    from training.store import RunStore

    store = RunStore(home)
    recipe = Recipe(base=str(base), train="all")
    trainer, result, _ = trained(base, recipe, HP)
    model, dataset = trainer.model.eval(), data_for(trainer.model)
    record = RunRecord(run_id="", status=RunState.FINISHED, model="tiny-bert", family="Transformer",
                       spec=finetune.finetune_spec(model, dataset).to_dict(),
                       dataset={"name": dataset.name, "source": None, "meta": dataset.meta(), "train_size": 1,
                                "val_size": 1}, hyperparameters=HP.to_dict(),
                       progress=RunProgress(step=result.step, total_steps=result.step), extra={"finetune": recipe.to_dict()})
    run_id = store.create("tiny-bert", record)
    store.save_dataset(run_id, dataset)
    store.save_checkpoint(run_id, 0, start_model(str(base), dataset.class_names, HP.seed, "tiny-bert"),
                          {**dataset.meta(), "run_id": run_id, "step": 0})
    store.save_checkpoint(run_id, result.step, model, {**dataset.meta(), "run_id": run_id, "step": result.step})
    return store, run_id, result.step


def test_the_attention_page_shows_the_same_head_before_and_after_fine_tuning(base, home):
    from transformers import AutoModel

    from tests.app_helpers import figure, open_page, values

    store, run_id, _ = finetuned_run(base, home)
    at = open_page("inspect_attention", model=store.load_model(run_id))
    assert any("before and after fine-tuning" in s.value for s in at.subheader)
    before, after = figure(at, "attention_before"), figure(at, "attention_after")
    sentence = at.text_area(key="attention_text").value
    ids = torch.tensor(BertTokenizer.from_pretrained(base)(sentence)["input_ids"])  # the base's own tokenizer
    assert len(ids) == len(before["data"][0]["x"])
    reference = AutoModel.from_pretrained(base, attn_implementation="eager").eval()  # the base, untouched
    with torch.no_grad():
        patterns = reference(input_ids=ids[None], output_attentions=True).attentions
    # the block and head the page opened, as its caption says them (counted from 1)
    said = next(c.value for c in at.caption if "on the same sentence" in c.value)
    chosen = re.search(r"Block (\d+), (?:head (\d+)|the mean of its heads)", said)
    block = int(chosen.group(1)) - 1
    expected = patterns[block][0].mean(0) if chosen.group(2) is None else patterns[block][0, int(chosen.group(2)) - 1]
    np_before = values(before["data"][0]["z"])
    torch.testing.assert_close(torch.tensor(np.array(np_before), dtype=torch.float32), expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(values(after["data"][0]["z"]), np_before)  # fine-tuning changed where it looks


def test_the_command_line_fine_tunes_on_a_csv_of_the_users_own(base, home, tmp_path, monkeypatch, capsys):
    from training import train

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _, texts, labels, names, _, _ = sentences(n=48)
    csv = tmp_path / "reviews.csv"
    csv.write_text("text,label\n" + "".join(f"{t},{names[y]}\n" for t, y in zip(texts, labels)))
    code = train.main(["--pretrained", str(base), "--dataset", str(csv), "--train", "top", "--top-blocks", "1",
                       "--epochs", "1", "--batch-size", "16", "--lr", "0.001"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "MB of memory" in out and "finished on cpu" in out
    lines = out.strip().splitlines()
    assert next(line for line in lines if line.startswith("Training tiny-bert on reviews.csv (38 training / 10 validation"))
    folder = lines[-1].removeprefix("run folder: ")
    run = json.loads((Path(folder) / "run.json").read_text())
    assert run["finetune"] == {"base": str(base), "train": "top", "top_blocks": 1, "head_lr": 1e-3}
    model = load_checkpoint(Path(folder) / "checkpoints" / f"step_{run['progress']['step']}")
    assert model.spec.class_names == ["negative", "positive"] and model.meta.dataset == "reviews.csv"


def test_bad_recipes_and_files_are_refused_in_words(base, tmp_path, capsys):
    from training import train

    assert Recipe(str(base), train="some").problems(2) == ["choose what to train: head, top, all, not 'some'"]
    assert "from 1 to 2, not 3" in Recipe(str(base), train="top", top_blocks=3).problems(2)[0]
    assert train.main(["--pretrained", str(base), "--dataset", str(tmp_path / "missing.csv")]) == 2
    assert train.main(["--pretrained", str(base), "--dataset", "digits"]) == 2
    assert "fine-tuning reads sentences" in capsys.readouterr().err


def test_train_on_the_page_submits_the_chosen_recipe_and_settings(base, monkeypatch):
    from app_pages import train_finetune
    from tests.app_helpers import open_page

    submitted = []

    def fake_submit(model, dataset, hp, recipe, owner=None):
        submitted.append((model.spec.name, dataset.name, len(dataset.x_train), hp, recipe))
        raise finetune.FinetuneError("not now: this is a test")

    monkeypatch.setattr(finetune, "submit", fake_submit)
    at = open_page("train", model=load_pretrained(str(base)))
    at.radio(key=train_finetune.TRAIN_PART).set_value("top").run()
    at.number_input(key=train_finetune.TOP_BLOCKS).set_value(1).run()
    at.number_input(key=train_finetune.HEAD_LR).set_value(0.01).run()
    at.button(key=train_finetune.START).click().run()
    (name, data, size, hp, recipe), = submitted
    assert (name, data, size) == ("tiny-bert", "sentiment", 1200)
    assert recipe == Recipe(base=str(base), train="top", top_blocks=1, head_lr=0.01)
    assert (hp.optimizer, hp.lr, hp.batch_size, hp.epochs) == ("adamw", 5e-5, 32, 1)
    assert any("Not now: this is a test." in e.value for e in at.error)  # a refusal is said in words


def test_the_step_slider_takes_every_view_back_to_the_model_before_fine_tuning(base, home):
    from app_pages import inspect_target
    from tests.app_helpers import figure, open_page, values

    store, run_id, last = finetuned_run(base, home)
    at = open_page("inspect_attention", model=store.load_model(run_id))
    slider = at.select_slider(key=f"{inspect_target.STEP}_{run_id}")
    assert slider.value == last
    slider.set_value(0).run()
    assert not at.exception
    before, shown = figure(at, "attention_before"), figure(at, "attention_head_map")
    np.testing.assert_allclose(values(shown["data"][0]["z"]), values(before["data"][0]["z"]))  # step 0 is "before"
    at = open_page("attributions", model=store.load_model(run_id))
    assert not at.exception and at.select_slider(key=f"{inspect_target.STEP}_{run_id}").value == last


def test_the_model_page_offers_the_fine_tuned_model_as_a_zip_that_loads_again(base, home):
    from app_pages import model_files
    from tests.app_helpers import open_page

    store, run_id, last = finetuned_run(base, home)
    model = store.load_model(run_id)
    at = open_page("model", model=model)
    labels = [button.proto.label for button in at.get("download_button")]
    assert "Download the fine-tuned model" in labels
    assert any("model files up to 100 MB" in c.value for c in at.caption)
    loaded, message = model_files.load_checkpoint_file(finetuned_zip(model), "tiny-bert.zip")  # what an upload does
    assert loaded is not None, message
    ids = data_for(model).x_val[:4]
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), model(ids), rtol=0, atol=1e-6)
    assert loaded.meta.run_id == run_id and loaded.meta.step == last
