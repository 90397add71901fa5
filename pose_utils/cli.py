"""Command line: `python -m pose_utils COMMAND` (or `pose-utils COMMAND`).

Each command's flags live here; its work lives in the module named in COMMANDS, imported only when
the command runs so that `--help` and `check-data` stay fast (TensorFlow takes seconds to import).
A PoseUtilsError becomes one line on stderr and exit status 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import PoseUtilsError, unwrap

# command -> "module:function"; the function takes the parsed argparse.Namespace.
COMMANDS = {
    "make-data": "pose_utils.synth:main",
    "check-data": "pose_utils.data:main",
    "train": "pose_utils.train:main",
    "evaluate": "pose_utils.evaluate:main",
    "run-notebooks": "pose_utils.notebooks:main",
    "benchmark": "pose_utils.benchmark:main",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pose-utils",
        description="3D human pose estimation from 8-frame clips (the dynamic regression model).",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("make-data", help="render the embedded motion-capture dataset")
    p.add_argument("--out", default="data/small", help="output folder (default: data/small)")
    p.add_argument("--preset", default="small", choices=["tiny", "small", "course"])
    p.add_argument("--format", default="both", choices=["h5", "npy", "both"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="render processes (default: CPU count)")
    p.add_argument("--frame-size", type=_positive_int, default=None, help="override the preset's frame size")
    p.add_argument("--train-clips", type=_positive_int, default=None, help="override the preset's count")
    p.add_argument("--valid-clips", type=_positive_int, default=None, help="override the preset's count")
    p.add_argument("--front-cues", action="store_true",
                   help="give the humanoid hair, a nose and a shirt print: its front differs from its back")

    p = sub.add_parser("check-data", help="validate a dataset folder and print a summary")
    p.add_argument("data", help="folder with {train,valid}.h5 or the course's .npy files")
    p.add_argument("--units", default="m", choices=["m", "mm"], help="units of the stored labels")

    p = sub.add_parser("train", help="train a model (the report's recipe by default)")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="run folder (history, checkpoints, config)")
    p.add_argument("--model", default=None, help="model name from the registry (default: seed)")
    p.add_argument("--epochs", type=_positive_int, default=None)
    p.add_argument("--batch-size", type=_positive_int, default=None)
    p.add_argument("--lr", type=_positive_float, default=None)
    p.add_argument("--lr-schedule", default=None, choices=["constant", "cosine"],
                   help="constant (the report's, default) or cosine decay over the epochs")
    p.add_argument("--loss", default=None, choices=["mse", "mpjpe"],
                   help="mse (the report's eq. 2, default) or mpjpe (the metric itself)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--precision", default=None, choices=["float32", "mixed_bfloat16", "mixed_float16"])
    p.add_argument("--strategy", default=None, choices=["default", "mirrored", "multiworker"])
    p.add_argument("--cpu-replicas", type=_positive_int, default=None)
    p.add_argument("--units", default=None, choices=["m", "mm"], help="stored labels' units (default: m)")
    p.add_argument("--max-train-clips", type=_positive_int, default=None)
    p.add_argument("--max-valid-clips", type=_positive_int, default=None)
    p.add_argument("--flip-augment", action="store_true", default=None, help="mirror about half the clips")
    p.add_argument("--model-option", type=_model_option, action="append", default=None, metavar="NAME=VALUE",
                   help="a model option, e.g. color_jitter=0.2 (repeat for more; see docs/models.md)")
    p.add_argument("--roll-augment", type=float, default=None, metavar="DEGREES",
                   help="turn each clip and its labels by up to this angle in the image plane")
    p.add_argument("--keypoint-loss", type=float, default=None, metavar="WEIGHT",
                   help="add WEIGHT x the 2-D keypoint error of a head on the CNN backbone to the loss "
                        "(HDF5 data with root and intrinsics; e.g. 3)")
    p.add_argument("--cache-frames", action="store_true", default=None,
                   help="hold the frames in memory (faster epochs when both splits fit)")
    p.add_argument("--jit-compile", action="store_true", default=None, help="compile the step with XLA")

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
                   help="quick (~20 min on 2 cores), full (hours; docs/models.md), tiny (smoke test)")
    p.add_argument("--out", required=True, help="folder for results.json, results.md, per_joint.png, runs/")
    p.add_argument("--data", default=None, help="dataset folder (default: render the preset's data)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, func_name = COMMANDS[args.command].split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        return int(func(args) or 0)
    except Exception as e:
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
