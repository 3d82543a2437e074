"""Command line: `python -m cv_helpers.workbench COMMAND ...` (train, evaluate, prepare-data, run-notebooks, tune,
tune-report, report-tables, edition, check, grade).

Errors print as one line (exit 2); Ctrl-C or SIGTERM keeps the last completed epoch (exit 130).
"""
from __future__ import annotations

import argparse
import inspect
import signal
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from ..config import data_dir, resolve_device
from ..errors import ConfigError, WorkbookError
from ..models import MODELS, has_hidden_size
from ..train_config import DATASETS, LOADERS, OPTIMIZERS, SCHEDULES, TrainConfig
from ..transforms import AUGMENTATIONS
from .presets import PRESETS, get_preset

class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one `error:` line (exit 2) pointing at --help, not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}; `{self.prog} --help` lists the options\n")


def _device(name: str) -> str:
    """argparse type of --device: the name, once `resolve_device` accepts it on this machine."""
    try:
        resolve_device(name)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return name


# CLI flag -> (TrainConfig field's type, choices or None, help; the default is TrainConfig's, said in the help).
TRAIN_FLAGS = {
    "model": (str, tuple(MODELS), "network"),
    "optimizer": (str, OPTIMIZERS, "optimizer"),
    "lr": (float, None, "learning rate (the peak rate with --schedule onecycle)"),
    "momentum": (float, None, "momentum of sgd and rmsprop"),
    "weight_decay": (float, None, "L2 weight decay (decoupled with adamw)"),
    "batch_size": (int, None, "training images per step"),
    "epochs": (int, None, "passes over the training set"),
    "augmentation": (str, tuple(AUGMENTATIONS), "training augmentation (see transforms.py)"),
    "loader": (str, LOADERS, "fast: batched tensor augmentation; pil: the course's per-image torchvision pipeline"),
    "schedule": (str, SCHEDULES, "learning-rate schedule"),
    "warmup_epochs": (float, None, "epochs of linear warm-up (constant and cosine schedules)"),
    "label_smoothing": (float, None, "label smoothing of the cross-entropy, in [0, 1)"),
    "seed": (int, None, "seed of the initial weights, shuffling and augmentation"),
    "dataset": (str, tuple(DATASETS), "training data"),
    "init_from": (str, None, "fine-tune this run's checkpoint (a run name or a .pt file)"),
}
ALIASES = {"augmentation": ["--transform"]}     # older names of renamed flags, still accepted


def _presets_block() -> str:
    """Returns the presets grouped by the question they answer, for `train --help`."""
    groups: dict[str, list[str]] = {}
    for name in PRESETS:
        groups.setdefault(name.split("-")[0], []).append(name)
    lines = [f"  {group:<9s}{', '.join(names)}" for group, names in groups.items()]
    return "presets (--preset NAME; the flags given with it override its settings):\n" + "\n".join(
        textwrap.fill(line, 118, subsequent_indent=" " * 11, break_on_hyphens=False) for line in lines)


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train one network; writes runs/NAME/{config,metrics}.json and "
                                               "checkpoint.pt", epilog=_presets_block(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                        help="start from a named recipe (listed below); flags override it")
    defaults = TrainConfig()
    for name, (kind, choices, text) in TRAIN_FLAGS.items():
        flag = "--" + name.replace("_", "-")
        one_of = f": one of {', '.join(choices)}" if choices else ""
        parser.add_argument(flag, *ALIASES.get(name, []), dest=name, type=kind, default=None,
                            metavar=name.upper(), help=f"{text}{one_of} (default: {getattr(defaults, name)!r}, "
                                                   "or the preset's)")
    widths = ", ".join(f"{inspect.signature(MODELS[name]).parameters['hidden_size'].default} for {name}"
                       for name in MODELS if has_hidden_size(name))
    parser.add_argument("--hidden-size", type=int, default=None,
                        help=f"hidden width of the MLPs (default: {widths}, or the preset's)")
    parser.add_argument("--run-name", default=None, help="run folder name (default: the preset or model name)")
    parser.add_argument("--resume", action="store_true", help="continue from runs/NAME/checkpoint.pt")
    parser.add_argument("--device", type=_device, default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile the network (default: as the preset says)")
    parser.add_argument("--tta-flip", action=argparse.BooleanOptionalAction, default=None,
                        help="evaluate on each image and its mirror image (default: as the preset says)")
    parser.add_argument("--validation", action=argparse.BooleanOptionalAction, default=None,
                        help="hold out 5,000 training images (50 per class) and measure on them, not on the test "
                             "split: for choosing settings (default: as the preset says)")


def _train_config(args: argparse.Namespace) -> TrainConfig:
    config = get_preset(args.preset) if args.preset else TrainConfig()
    for name in TRAIN_FLAGS:
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    for switch in ("compile", "tta_flip", "validation"):
        if getattr(args, switch) is not None:
            setattr(config, switch, getattr(args, switch))
    if args.hidden_size is not None:
        config.model_kwargs["hidden_size"] = args.hidden_size
    return config


def _run_train(args: argparse.Namespace) -> int:
    from .experiment import run_experiment  # heavy imports only when training

    config = _train_config(args)
    run_name = args.run_name if args.run_name is not None else args.preset or config.model
    result = run_experiment(config, run_name, resume=args.resume, device=args.device,
                            progress=not args.no_progress)
    print(f"{run_name}: {result.evaluated_on} accuracy {result.test_acc:.2f} % after {result.history.epochs} epochs "
          f"({sum(result.history.seconds):.0f} s); files in {result.run_dir}")
    return 0


def _add_evaluate_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="re-evaluate a finished run's checkpoint on the split it was "
                                                  "measured on; writes runs/NAME/evaluation-{tta-flip,plain}.json")
    parser.add_argument("run_name", help="run folder name under runs/")
    parser.add_argument("--tta-flip", action=argparse.BooleanOptionalAction, default=False,
                        help="average each image's and its mirror image's class probabilities")
    parser.add_argument("--tta-translate", type=int, default=0, choices=range(5), metavar="PIXELS",
                        help="with --tta-flip: also average over copies shifted PIXELS diagonally either way (6 "
                             "views); writes evaluation-tta-flip-shiftPIXELS.json")
    parser.add_argument("--device", type=_device, default=None, help="cpu or cuda (default: cuda when available)")


def _run_evaluate(args: argparse.Namespace) -> int:
    from .experiment import evaluate_run

    evaluation = evaluate_run(args.run_name, args.tta_flip, device=args.device, tta_translate=args.tta_translate)
    how = "with" if args.tta_flip else "without"
    shifted = f" and {args.tta_translate} px shifts" if args.tta_translate else ""
    split = evaluation.get("evaluated_on", "test")
    print(f"{args.run_name}: {split} accuracy {evaluation['test_acc']:.2f} % {how} flip{shifted} test-time "
          f"augmentation (checkpoint of epoch {evaluation['checkpoint_epoch']})")
    return 0


def _add_prepare_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("prepare-data", help="download CIFAR-100 and STL-10 (torchvision) and write "
                                                      "the prepared arrays")
    parser.add_argument("--out", type=Path, default=None, help="prepared-data folder (default: CV_HELPERS_DATA "
                                                                "or data/)")
    parser.add_argument("--downloads", type=Path, default=None, help="where the official archives go "
                                                                      "(default: OUT/downloads)")
    parser.add_argument("--datasets", nargs="+", choices=["cifar100", "stl10"], default=["cifar100", "stl10"])
    parser.add_argument("--stl10-sample", type=Path, default=None, metavar="DIR",
                        help="convert STL-10 from a folder in the official binary layout (e.g. the real 219-image "
                             "sample ../shared/data/stl10_sample) instead of downloading the archive")


def _run_prepare(args: argparse.Namespace) -> int:
    from ..prepare import prepare_data

    out = args.out or data_dir()
    for line in prepare_data(out, args.downloads or out / "downloads", args.datasets,
                             stl10_sample=args.stl10_sample):
        print(line)
    return 0


def _add_notebooks_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run-notebooks", help="execute the notebooks headless (the main job); executed "
                                                       "copies go to report/notebooks/")
    parser.add_argument("names", nargs="*", help="notebook file names or stems (default: all five, in order)")


def _run_notebooks(args: argparse.Namespace) -> int:
    from ..config import default_device, describe_device, mode_name, report_dir, shown_path
    from .notebooks import notebook_paths, record_times, run_notebooks, training_plan

    print(training_plan([path.stem for path in notebook_paths(args.names)]), flush=True)
    times = []
    for name, seconds in run_notebooks(args.names, progress=lambda line: print(line, flush=True)):
        print(f"{name}: {seconds / 60:.1f} min", flush=True)
        times.append((name, seconds))
    record_times(times, describe_device(default_device()))
    print(f"times recorded in {shown_path(report_dir() / 'tables')}/notebook_times_{mode_name()}.md")
    return 0


def _add_tune_parsers(commands: argparse._SubParsersAction) -> None:
    tune = commands.add_parser("tune", help="add Optuna trials to a study (several workers may share one)")
    tune.add_argument("--study", required=True)
    tune.add_argument("--trials", type=int, required=True)
    tune.add_argument("--storage", default=None, help="SQLAlchemy URL (e.g. postgresql://...) or journal file "
                                                     "(default runs/optuna-journal.log)")
    tune.add_argument("--preset", choices=list(PRESETS), default=None, help="base recipe (default: LeNet ConvNet)")
    tune.add_argument("--models", nargs="+", default=None, help="models to search (default: the preset's)")
    tune.add_argument("--epochs", type=int, nargs="+", default=[5], help="epoch counts to search")
    tune.add_argument("--seed", type=int, default=0, help="sampler seed")
    tune.add_argument("--pruner", default="median", help="median or halving")
    report = commands.add_parser("tune-report", help="write a study's trials table and plots to report/")
    report.add_argument("--study", required=True)
    report.add_argument("--storage", default=None)


def _run_tune(args: argparse.Namespace) -> int:
    from .tune import SearchSpace, run_study

    chosen = get_preset(args.preset) if args.preset else TrainConfig(model="convnet")
    base = replace(chosen, validation=True)        # a study chooses settings: on the validation split
    space = SearchSpace(models=tuple(args.models or [base.model]), epochs=tuple(args.epochs))
    if args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    study = run_study(args.study, args.trials, base, space, args.storage, args.seed, args.pruner)
    best = study.best_trial if any(t.value is not None for t in study.trials) else None
    print(f"study {args.study}: {len(study.trials)} trials" +
          (f"; best {best.value:.2f} % with {best.params}" if best else ""))
    return 0


def _run_tune_report(args: argparse.Namespace) -> int:
    from .tune import create_or_load_study, write_study_report

    print(write_study_report(create_or_load_study(args.study, args.storage)))
    return 0


def _run_report_tables(args: argparse.Namespace) -> int:
    from ..config import report_dir, shown_path
    from .report import BODY_PAGES, build_report, report_pages
    from .results import write_results_table

    protocols = write_results_table().count("\n| ") - 1            # the table's rows, less its rule line
    print(f"written {shown_path(report_dir() / 'tables')}: results ({protocols} protocols), results_on_test, "
          "results_on_validation, what_worked, what_worked_on_test")
    pdf = build_report()
    pages, body = report_pages(pdf)
    over = f": over the course's {BODY_PAGES}, move exports to the appendix" if body > BODY_PAGES else ""
    print(f"written {shown_path(pdf.with_suffix('.md'))} and {shown_path(pdf)}: {pages} pages, {body} of body{over}, "
          "then the appendix")
    return 0


# What an interrupted command kept, and how to go on (every file is written atomically, so none is half-written).
INTERRUPTED = {
    "train": "the last completed epoch is saved in the run folder: rerun the same command with --resume to continue",
    "evaluate": "nothing was written; rerun the command",
    "prepare-data": "the files written so far are complete; rerun the same command to convert the rest",
    "run-notebooks": "finished runs and notebooks are kept and reused; rerun the same command to continue",
    "tune": "finished trials are kept in the study; rerun the same command to add more",
    "tune-report": "rerun the command", "report-tables": "rerun the command", "submission": "rerun the command",
    "edition": "delete the half-written folder and rerun the command", "check": "rerun the command",
    "grade": "delete the --out folder and rerun the command",
}


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser of every command."""
    parser = OneLineParser(prog="python -m cv_helpers.workbench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(commands)
    _add_evaluate_parser(commands)
    _add_prepare_parser(commands)
    _add_notebooks_parser(commands)
    _add_tune_parsers(commands)
    commands.add_parser("report-tables", help="build report/tables/results.{md,csv} from the run folders, then "
                                              "report/report.pdf and report.md (refuses smoke-mode figures)")
    submission = commands.add_parser("submission", help="write the course's hand-in zip (ID1_ID2_ID3_part2.zip): the "
                                                        "notebooks, cv_helpers/, the environment, report.pdf with "
                                                        "the group's contribution table")
    submission.add_argument("--group", type=Path, default=Path("group.csv"),
                            help="the group's CSV: name,student_id,research,programming,writing (default: group.csv)")
    submission.add_argument("--out", type=Path, default=Path("."), help="folder for the zip (default: .)")
    edition = commands.add_parser("edition", help="write the student edition (every solution region a stub), or "
                                                  "print the grading map")
    edition.add_argument("kind", choices=["student", "map"], help="student: write the edition to OUT; map: print the "
                                                                  "grading map (task, points, package, notebook)")
    edition.add_argument("out", type=Path, nargs="?", default=None, help="a new folder for the student edition")
    check = commands.add_parser("check", help="the self-check: run checks/ and print each task's points")
    check.add_argument("folder", type=Path, nargs="?", default=Path("."), help="the edition's folder (default: .)")
    grade = commands.add_parser("grade", help="grade a submission (folder or zip) under the staff's checks, or every "
                                              "submission in a folder of them (--many)")
    grade.add_argument("submission", type=Path, help="the student's project folder or the course's zip")
    grade.add_argument("--many", action="store_true", help="SUBMISSION is a folder of submissions: one CSV")
    grade.add_argument("--out", type=Path, required=True, help="a new folder for the grading and grades.{json,md}")
    grade.add_argument("--hidden", type=Path, default=None, help="a folder of hidden checks laid over checks/")
    grade.add_argument("--no-notebooks", action="store_true",
                       help="skip running the submission's notebooks in smoke mode (they run by default)")
    return parser


def _run_grade(args: argparse.Namespace) -> int:
    from .grader import grade_many, grade_submission, grades_table

    notebooks = [] if args.no_notebooks else None
    if args.many:
        print(f"grades of every submission: {grade_many(args.submission, args.out, args.hidden, notebooks=notebooks)}")
    else:
        print(grades_table(grade_submission(args.submission, args.out, args.hidden, notebooks=notebooks)))
    return 0


def _run_submission(args: argparse.Namespace) -> int:
    from .submission import build_submission

    print(f"written {build_submission(args.group, args.out)}")
    return 0


def _run_check(args: argparse.Namespace) -> int:
    from .grading import run_checks, score_table, task_scores

    print(score_table(task_scores(run_checks(args.folder))))
    return 0


def _run_edition(args: argparse.Namespace) -> int:
    from .edition import edition_stubs, write_student_edition
    from .tasks import grading_map

    if args.kind == "map":
        print(grading_map(edition_stubs()))
        return 0
    if args.out is None:
        raise ConfigError("edition student needs a new folder: python -m cv_helpers.workbench edition student OUT")
    stubs = write_student_edition(args.out)
    files = {stub.place.split(":")[0] for stub in stubs}
    print(f"student edition in {args.out}: {len(stubs)} solution regions stubbed in {len(files)} files; "
          f"what to implement where: {args.out / 'README.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM ends like Ctrl-C: last checkpoint kept
    handlers = {"train": _run_train, "evaluate": _run_evaluate, "prepare-data": _run_prepare,
                "run-notebooks": _run_notebooks, "tune": _run_tune, "tune-report": _run_tune_report,
                "report-tables": _run_report_tables, "edition": _run_edition,
                "check": _run_check, "grade": _run_grade, "submission": _run_submission}
    try:
        return handlers[args.command](args)
    except WorkbookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; {INTERRUPTED[args.command]}", file=sys.stderr)
        return 130
