"""Train from the command line, on the same engine as the app (for models prepared before class).

    python -m training.train --preset digits-cnn --dataset digits --epochs 2
    python -m training.train --preset digits-cnn --dataset digits --pace 30   # slow motion for a class
    python -m training.train --pretrained all-MiniLM-L6-v2 --dataset sentiment  # fine-tune (--train head|top|all)
    python -m training.train --pretrained all-MiniLM-L6-v2 --dataset my-reviews.csv --train top --top-blocks 2

The run goes through ``training.jobs`` like one started in the app, so it appears in the app's
list of runs (same $GLASSBOX_HOME) with its metrics and checkpoints. Progress is printed as it
comes; the last line names the run's folder. The exit code is 0 only if the run finished.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

PRINT_EVERY_S = 1.0  # a progress line at most this often (plus one per epoch)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from models import presets
    from training.hyperparameters import DEVICES, OPTIMIZERS, SCHEDULES

    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--preset", choices=presets.names(), help="the model to train")
    model.add_argument("--pretrained", metavar="MODEL", help="fine-tune a pretrained text encoder: all-MiniLM-L6-v2 "
                                                             "(built in) or a BERT-family model folder")
    parser.add_argument("--dataset", required=True, help="a built-in dataset: digits, shapes, sentiment, ...; "
                                                        "with --pretrained: sentiment or a .csv of text,label rows")
    parser.add_argument("--train", choices=("head", "top", "all"), help="with --pretrained: what training changes "
                                                                        "(default all)")
    parser.add_argument("--top-blocks", type=int, help="with --train top: how many of the last blocks train (default 2)")
    parser.add_argument("--head-lr", type=float, help="with --pretrained: the new head's learning rate (default 0.001)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a dataset option, e.g. --option train_size=2000 (repeatable)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--schedule", choices=SCHEDULES)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", choices=DEVICES)
    parser.add_argument("--pace", type=float, metavar="SECONDS",
                        help="spread the run over about this many seconds, for a class to watch (default 0: "
                             "as fast as it goes); it learns exactly what it would unpaced")
    parser.add_argument("--home", help="where runs are kept (default: $GLASSBOX_HOME or ~/.glassbox)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.home:
        os.environ["GLASSBOX_HOME"] = args.home
    from models import presets
    from training import jobs
    from training.data import DatasetError, fit_spec_to_dataset
    from training.devices import DeviceError
    from training.hyperparameters import HyperparameterError, default_hyperparameters
    from training.record import RunState

    try:
        if args.pretrained:
            spec, dataset, hp, submit = finetune_run(args)
        else:
            dataset = load_dataset(args.dataset, parse_options(args.option))
            spec = fit_spec_to_dataset(presets.get(args.preset), dataset)
            hp = default_hyperparameters(spec)
            submit = jobs.submit
        for field in ("epochs", "lr", "batch_size", "optimizer", "schedule", "weight_decay", "seed", "device"):
            if getattr(args, field) is not None:
                setattr(hp, field, getattr(args, field))
        if args.pace is not None:
            hp.pace_s = args.pace
        run_id = submit(spec, dataset, hp)
    except (DatasetError, HyperparameterError, DeviceError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    current = jobs.status(run_id)
    print(f"Training {spec.name} on {dataset.name} ({len(dataset.x_train):,} training / {len(dataset.x_val):,} "
          f"validation examples): {hp.optimizer} lr {hp.lr:g}, batch {hp.batch_size}, {hp.epochs} epochs "
          f"= {current.total_steps:,} steps{f', paced to about {hp.pace_s:g} s' if hp.pace_s else ''}")
    print(f"run {run_id}", flush=True)
    try:
        current = follow(run_id)
    except KeyboardInterrupt:
        current = jobs.stop(run_id, wait_s=5.0)
        print(f"\n{current.status}: {current.message}")
    else:
        best = f" Best validation accuracy {current.best_val_acc:.1%}." if current.best_val_acc is not None else ""
        print(f"{current.status} on {current.device}: {current.message}{best}")
    print(f"run folder: {current.folder}", flush=True)
    return 0 if current.status is RunState.FINISHED else 1


def finetune_run(args):
    """(spec, dataset, hyperparameters, submit) of a fine-tune: the model loaded, the data read
    with its tokenizer, the memory it needs said (and a run that would not fit refused)."""
    from models.pretrained import PretrainedError, load_pretrained
    from training import finetune

    try:
        model = load_pretrained(args.pretrained)
    except PretrainedError as err:
        raise ValueError(str(err)) from err
    if args.dataset.lower().endswith((".csv", ".tsv", ".txt")):
        with open(args.dataset, "rb") as handle:
            texts = finetune.csv_texts(handle.read(), os.path.basename(args.dataset))
    elif args.dataset == "sentiment":
        options = parse_options(args.option)
        texts = finetune.sentiment_texts(options.get("n"), options.get("seed", 0))
    else:
        raise ValueError("fine-tuning reads sentences: --dataset sentiment, or a .csv of text,label rows")
    dataset = finetune.finetune_dataset(model.tokenizer, *texts, model_max_len=model.spec.input.max_len)
    defaults = finetune.Recipe(base=args.pretrained)
    recipe = finetune.Recipe(base=args.pretrained, train=args.train or defaults.train,
                             top_blocks=args.top_blocks or defaults.top_blocks, head_lr=args.head_lr or defaults.head_lr)
    hp = finetune.default_hyperparameters()

    def submit(spec, dataset, hp):
        print(finetune.plan_for(model, dataset, hp, recipe).words(), flush=True)
        return finetune.submit(model, dataset, hp, recipe)

    return finetune.finetune_spec(model, dataset), dataset, hp, submit


def follow(run_id: str):
    """Print the run's records as they arrive, until it ends; returns its final status."""
    from training import jobs
    from training.record import RunState

    offset, last_print, announced = 0, 0.0, None
    while True:
        jobs.reconcile(run_id)  # this loop drives the run: a worker that dies ends it as failed
        current = jobs.status(run_id)
        if current.status != announced and current.status in (RunState.QUEUED, RunState.RUNNING):
            print(f"{current.status}{' on ' + current.device if current.device else ''}", flush=True)
            announced = current.status
        records, offset = jobs.read_metrics(run_id, offset)
        for record in records:
            now = time.time()
            if record["type"] == "train" and (now - last_print >= PRINT_EVERY_S or record["epoch"] == int(record["epoch"])):
                print(format_record(record, current.total_steps), flush=True)
                last_print = now
            elif record["type"] in ("val", "resume"):
                print(format_record(record, current.total_steps), flush=True)
        if not current.active:
            return current
        time.sleep(0.2)


def format_record(record: dict, total_steps: int) -> str:
    if record["type"] == "train":
        return (f"epoch {record['epoch']:6.2f}  step {record['step']:>6}/{total_steps}  loss {_number(record['loss'])}"
                f"  acc {record['acc']:6.1%}  lr {record['lr']:.2e}  {record['samples_per_s']:,.0f} samples/s")
    if record["type"] == "val":
        return f"epoch {record['epoch']:>3} done  val loss {_number(record['val_loss'])}  val acc {record['val_acc']:6.1%}"
    return f"resumed from step {record['step']}"


def _number(value) -> str:
    return "   nan" if value is None else f"{value:.4f}"


def load_dataset(name: str, options: dict):
    try:
        from training.datasets import load_dataset as load_builtin
    except ModuleNotFoundError as err:
        raise ValueError("the built-in datasets (training.datasets) are not installed") from err
    return load_builtin(name, **options)


def parse_options(pairs: list[str]) -> dict:
    """['train_size=2000', 'noise=0.1'] -> {'train_size': 2000, 'noise': 0.1} (numbers read as numbers)."""
    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"a dataset option must look like KEY=VALUE, not '{pair}'")
        for kind in (int, float):
            try:
                options[key] = kind(text)
                break
            except ValueError:
                continue
        else:
            options[key] = {"true": True, "false": False}.get(text.lower(), text)
    return options


if __name__ == "__main__":
    sys.exit(main())
