"""Command line: `python -m pose_utils COMMAND` (or `pose-utils COMMAND`).

Each command's flags live here; its work lives in the module named in COMMANDS, imported only when
the command runs so that `--help` and `check-data` stay fast (TensorFlow takes seconds to import).
A PoseUtilsError becomes one line on stderr and exit status 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pose_utils.errors import PoseUtilsError, unwrap, unwritten_exercise

# command -> "module:function"; the function takes the parsed argparse.Namespace.
COMMANDS = {
    "make-data": "pose_course.datagen.command:main",
    "check-data": "pose_utils.data.store:main",
    "train": "pose_utils.training.loop:main",
    "evaluate": "pose_utils.evaluate:main",
    "run-notebooks": "pose_course.runner:main",
    "benchmark": "pose_course.compare:main",
    "lab": "pose_course.lab:main",
    ### BEGIN INSTRUCTOR ONLY
    "release": "pose_course.instructor.release:main",
    "grade": "pose_course.instructor.grading.grade:main",
    "gradescope": "pose_course.instructor.gradebook.gradescope:main",
    "gradebook": "pose_course.instructor.gradebook.command:main",
    ### END INSTRUCTOR ONLY
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _model_option(text: str) -> tuple[str, object]:
    """NAME=VALUE, the value read as JSON (0.2, true, 128) or else kept as text."""
    import json

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. color_jitter=0.2), got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """The train command's flags, one per TrainConfig key that has one (`training.config.FLAGS`). Every
    default is None, so a flag left out keeps TrainConfig's default (or, on resume, the saved value)."""
    from pose_utils.training.config import FLAGS

    types = {"positive_int": _positive_int, "positive_float": _positive_float, "int": int, "float": float,
             "text": str, "choice": str}
    for key, spec in FLAGS.items():
        kwargs = {"dest": key, "default": None, "help": spec.help or None, "metavar": spec.metavar}
        if spec.kind == "switch":
            kwargs["action"] = "store_true"
        elif spec.kind == "option":
            kwargs.update(type=_model_option, action="append")
        else:
            kwargs["type"] = types[spec.kind]
            if spec.choices:
                kwargs["choices"] = list(spec.choices)
        parser.add_argument(spec.flag, **{k: v for k, v in kwargs.items() if v is not None or k == "default"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pose-utils",
        description="3D human pose estimation from 8-frame clips (the dynamic regression model).",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("make-data", help="render the embedded motion-capture dataset")
    p.add_argument("--out", default="data/small", help="output folder (default: data/small)")
    p.add_argument("--preset", default="small", choices=["tiny", "small", "course", "hard"])
    p.add_argument("--style", default=None, choices=["everyday", "hard"],
                   help="override the preset's style: everyday (upright motions, cameras at chest height; "
                        "tiny, small and course) or hard (every motion, cameras from knee to above head)")
    p.add_argument("--format", default="both", choices=["h5", "npy", "both"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="render processes (default: CPU count)")
    p.add_argument("--frame-size", type=_positive_int, default=None, help="override the preset's frame size")
    p.add_argument("--train-clips", type=_positive_int, default=None, help="override the preset's count")
    p.add_argument("--valid-clips", type=_positive_int, default=None, help="override the preset's count")
    p.add_argument("--front-cues", action=argparse.BooleanOptionalAction, default=None,
                   help="give the humanoid hair, a nose and a shirt print: its front differs from its back "
                        "(default: on in the everyday style, off in hard)")
    p.add_argument("--hidden-subjects", action="store_true",
                   help="clips played by subjects no student's data has (S2, S3, S4, S10): a grader's "
                        "hidden clips for grade --hidden-data")

    p = sub.add_parser("check-data", help="validate a dataset folder and print a summary")
    p.add_argument("data", help="folder with {train,valid}.h5 or the course's .npy files")
    p.add_argument("--units", default="m", choices=["m", "mm"], help="units of the stored labels")

    p = sub.add_parser("train", help="train a model (the report's recipe by default)")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="run folder (history, checkpoints, config)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    _add_config_flags(p)

    p = sub.add_parser("evaluate", help="evaluate a trained run on a split")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--run", required=True, help="run folder written by `train`")
    p.add_argument("--out", required=True, help="folder for metrics.json and predictions.npz")
    p.add_argument("--split", default="valid", choices=["train", "valid"])
    p.add_argument("--units", default=None, choices=["m", "mm"], help="labels' units (default: the run's)")
    p.add_argument("--flip-test", action="store_true",
                   help="average each prediction with the mirrored clip's, mirrored back")

    p = sub.add_parser("run-notebooks", help="execute the numbered notebooks with papermill")
    p.add_argument("--out", required=True, help="folder for the executed notebooks and their results")
    p.add_argument("--quick", action="store_true", help="tiny data and few epochs (minutes)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("--notebooks", default="notebooks", help="folder holding NN_*.ipynb")

    p = sub.add_parser("benchmark", help="train and compare the baseline, the seed model and variants")
    p.add_argument("--preset", default="quick", choices=["quick", "full", "tiny"],
                   help="quick (20-35 min on 2 cores), full (hours; docs/models.md), tiny (smoke test)")
    p.add_argument("--out", required=True, help="folder for results.json, results.md, per_joint.png, runs/")
    p.add_argument("--data", default=None, help="dataset folder (default: render the preset's data)")

    p = sub.add_parser("lab", help="JupyterLab on this repository (quiet kernels, saved widget state)")
    p.add_argument("--root", default=None, help="folder JupyterLab serves (default: the repository)")
    p.add_argument("--port", type=_positive_int, default=8888, help="port on 127.0.0.1 (default: 8888, "
                   "else a free one)")
    p.add_argument("--token", default=None, help="login token (default: random, in the URL printed)")
    p.add_argument("--no-browser", action="store_true", help="do not try to open a web browser")
    p.add_argument("jupyter_args", nargs="*", metavar="-- JUPYTER_ARGS",
                   help="further `jupyter lab` options, after --")

    ### BEGIN INSTRUCTOR ONLY
    # The instructor's commands; the student version leaves them out (pose_course.instructor.release).
    p = sub.add_parser("release", help="write the student version of this repository")
    p.add_argument("--out", required=True, help="a new folder for the student repository")

    p = sub.add_parser("grade", help="grade student submissions (folders or .zip files) with nbval")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="a student repository: folder or .zip")
    p.add_argument("--out", required=True, help="folder for grades.csv, grades.md and one folder per student")
    p.add_argument("--jobs", type=_positive_int, default=1, help="submissions graded at once (default: 1)")
    p.add_argument("--timeout", type=_positive_float, default=900.0,
                   help="seconds one submission may take in all (default: 900)")
    p.add_argument("--cell-timeout", type=_positive_float, default=300.0,
                   help="seconds one notebook cell may take (default: 300)")
    p.add_argument("--instructor", default=None,
                   help="the instructor's repository (default: the one this pose_utils comes from)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a notebook parameter for grading, over the defaults (GRADING_PARAMETERS in "
                        "the grader's grade.py: tiny data rendered into OUT/grading-data, one epoch)")
    p.add_argument("--memory", type=_positive_float, default=None, metavar="GIB",
                   help="address space of one sandboxed process, in GiB (default: 8)")
    p.add_argument("--processes", type=_positive_int, default=None, metavar="N",
                   help="processes and threads of one sandboxed run (default: 1024)")
    p.add_argument("--checks-only", action="store_true",
                   help="run the checks only, not the student's own notebooks as submitted (faster)")
    p.add_argument("--hidden-data", default=None, metavar="DIR",
                   help="score each submission's trained model (runs/challenge/) on DIR's clips, whose "
                        "labels never enter the sandbox (docs/assignment.md, \"The model\")")
    p.add_argument("--model-rule", default=None, metavar="FILE",
                   help="JSON: the run folder, budget and points thresholds of the model grading "
                        "(default: ModelRule in the grader's model_grade.py)")
    p.add_argument("--isolation", default=None, choices=["bubblewrap", "container-user"],
                   help="bubblewrap (default), or container-user: WEAKER, only in a throwaway container "
                        "per submission such as Gradescope's (docs/assignment.md, \"Gradescope\")")
    p.add_argument("--roster", default=None, metavar="CSV",
                   help="student_id,name,email,submission[,submitted_at]: copied into OUT; the sheets gain "
                        "the students' columns (docs/assignment.md, \"Gradebook\")")
    p.add_argument("--policy", default=None, metavar="JSON",
                   help="deadline, extensions, penalty and overrides: copied into OUT; the sheets gain "
                        "the submission time, days late and the final points")

    p = sub.add_parser("gradescope", help="Gradescope: results.json of graded submissions, the "
                                          "autograder zip")
    gs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = gs.add_parser("export", help="write DIR/NAME/results.json for every submission graded into OUT")
    q.add_argument("out", metavar="OUT", help="the folder `grade --out` wrote")
    q.add_argument("--to", required=True, metavar="DIR", help="folder for NAME/results.json")
    q.add_argument("--instructor", default=None, help="the instructor's repository (default: this one)")
    q = gs.add_parser("bundle", help="write the autograder .zip Gradescope takes (setup.sh, run_autograder)")
    q.add_argument("--out", required=True, help="the .zip to write")
    q.add_argument("--instructor", default=None, help="the instructor's repository (default: this one)")
    q.add_argument("--timeout", type=_positive_float, default=None,
                   help="seconds per submission (default: 900)")
    q.add_argument("--cell-timeout", type=_positive_float, default=None,
                   help="seconds per notebook cell (default: 300)")
    q.add_argument("--checks-only", action="store_true", help="do not run the notebooks as submitted")

    p = sub.add_parser("gradebook", help="after grading: mark written answers in a browser, roster and "
                                         "late policy, Canvas export")
    p.add_argument("action", choices=["serve", "sheets", "canvas"],
                   help="serve: the marking page on 127.0.0.1; sheets: grades.csv, grades.md and the "
                        "feedback again (with --roster/--policy); canvas: the Canvas gradebook CSV")
    p.add_argument("out", metavar="OUT", help="the --out folder of a grade run")
    p.add_argument("--instructor", default=None,
                   help="the instructor's repository (default: the one this pose_utils comes from)")
    p.add_argument("--roster", default=None, metavar="CSV", help="a roster to copy into OUT first")
    p.add_argument("--policy", default=None, metavar="JSON", help="a late policy to copy into OUT first")
    p.add_argument("--port", type=int, default=8765, help="serve: the port on 127.0.0.1 (0: any free one)")
    p.add_argument("--to", default=None, metavar="FILE", help="canvas: the CSV to write")
    p.add_argument("--assignment", default="Programming Assignment 4",
                   help="canvas: the assignment's column, 'Name (id)' to update an existing one")
    ### END INSTRUCTOR ONLY
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, func_name = COMMANDS[args.command].split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        return int(func(args) or 0)
    except Exception as e:
        if unwritten_exercise(e) and not args.debug:  # the student version, before the student wrote it
            print(f"error: {e}", file=sys.stderr)
            return PoseUtilsError.exit_code
        error = e if isinstance(e, PoseUtilsError) else unwrap(e)
        if error is None or args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
