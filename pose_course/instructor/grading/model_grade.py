"""The student's trained model on clips it never saw (`grade ... --hidden-data DIR`): step 2b of grade.py.

Where the labels are: the hidden split is opened by the grader, outside every sandbox. Its frames alone
are written once per batch into the helper folder (`HIDDEN_FRAMES`, uint8, the only part bound into the
sandboxes), and DIR itself is hidden in them like the instructor's repository. Inside the sandbox the
submitted run's `model.keras` is loaded in Keras's safe mode (no Python `Lambda` bytecode) with the
student's own `pose_utils` importable (its registered layers), and predicts the frames into
`predictions.npy` in the run's folder. Everything that process writes or says is the student's, so
nothing it says is believed: the grader reads the predictions back as untrusted bytes (no pickles),
checks their shape and values, maps them back to metres with the run's `target_transform.json` (read by the
grader's own code) and scores them against the labels with pose_utils.metrics. The parameter count is
read from the weights file inside `model.keras` (HDF5 dataset shapes), never from the student's process.

Points follow one instructor-side rule (`ModelRule`, a JSON file given with `--model-rule`): full points
at or below `full_at_mm` (a number, or "reference": `reference_factor` times the MPJPE of the
instructor's own run `reference` on the same clips), none at or above `zero_at_mm` (a number, or
"mean_pose": the error of always predicting the hidden labels' own mean pose), linear between. A bad
model (no run folder, a file over the size limit, over the parameter budget, not loadable in safe mode,
outputs of the wrong shape or not finite, past its time limit) is one line and 0 model points; the
batch goes on.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_course.challenge import CHALLENGE_RUN
from pose_course.instructor.grading.results import ModelScore
from pose_course.instructor.grading.runs import PREDICTIONS
from pose_course.instructor.grading.untrusted import read_back
from pose_utils.errors import ConfigError, PoseUtilsError
from pose_utils.fileio import atomic_path
from pose_utils.models.challenge import MAX_PARAMETERS
from pose_utils.training.runfolder import MODEL_FILE, TRANSFORM_FILE

HIDDEN_FRAMES = "hidden-frames.npy"  # in the batch's helper folder: frames only, never labels
MiB = 1024 * 1024


@dataclass(frozen=True)
class ModelRule:
    """How a submitted model is found, limited and scored (`--model-rule FILE`: a JSON object of these)."""

    run: str = CHALLENGE_RUN  # the run folder in the submission (model.keras, target_transform.json, ...)
    split: str = "valid"  # the hidden folder's split that is predicted
    points: float = 10.0
    full_at_mm: float | str = 150.0  # at or below: every point; "reference": reference_factor x the MPJPE
    reference: str | None = None  # the instructor's finished run folder (full_at_mm "reference")
    reference_factor: float = 1.1
    zero_at_mm: float | str = "mean_pose"  # at or above: none; "mean_pose": the hidden mean pose's MPJPE
    max_parameters: int = MAX_PARAMETERS  # the challenge's budget, as notebook 06 states it
    max_model_mb: float = 64.0
    predict_seconds: float = 120.0  # loading and predicting, in the sandbox
    batch_size: int = 16

    @classmethod
    def read(cls, path: str | Path | None) -> ModelRule:
        if path is None:
            return cls()
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"--model-rule {path}: not a readable JSON file ({e})") from None
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(raw, dict) or set(raw) - names:
            raise ConfigError(f"--model-rule {path}: a JSON object with keys among {', '.join(sorted(names))}"
                              + (f"; unknown: {', '.join(sorted(set(raw) - names))}" if isinstance(raw, dict)
                                 else ""))
        rule = cls(**raw)
        rule.check(str(path))
        return rule

    def check(self, where: str = "the model rule") -> None:
        positive = {"points": self.points, "reference_factor": self.reference_factor,
                    "max_parameters": self.max_parameters, "max_model_mb": self.max_model_mb,
                    "predict_seconds": self.predict_seconds,
                    "batch_size": self.batch_size}
        for key, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ConfigError(f"{where}: {key} must be a positive number, got {value!r}")
        numeric = isinstance(self.full_at_mm, (int, float)) and not isinstance(self.full_at_mm, bool)
        if numeric and not 0 < self.full_at_mm < float("inf"):
            raise ConfigError(f"{where}: full_at_mm must be a positive number or \"reference\", "
                              f"got {self.full_at_mm!r}")
        if not numeric and (self.full_at_mm != "reference" or not self.reference):
            raise ConfigError(f"{where}: full_at_mm must be a number, or \"reference\" with reference naming "
                              f"the instructor's run folder; got full_at_mm {self.full_at_mm!r}, reference "
                              f"{self.reference!r}")
        if self.zero_at_mm != "mean_pose" and not (isinstance(self.zero_at_mm, (int, float)) and (
                not numeric or self.zero_at_mm > self.full_at_mm)):
            raise ConfigError(f"{where}: zero_at_mm must be \"mean_pose\" or a number above full_at_mm "
                              f"({self.full_at_mm}), got {self.zero_at_mm!r}")
        if Path(self.run).is_absolute() or ".." in Path(self.run).parts:
            raise ConfigError(f"{where}: run must be a path inside the submission, got {self.run!r}")


@dataclass
class HiddenSet:
    """The hidden split as the grader holds it: labels (N, 8, 17, 3) metres, outside every sandbox."""

    data_dir: Path  # the instructor's hidden folder, and its split
    split: str
    labels: np.ndarray
    frames_path: Path  # HIDDEN_FRAMES in the helper folder
    mean_pose_mm: float  # MPJPE of always predicting the labels' mean pose
    mean_pose_per_joint_mm: list  # the same, joint by joint
    reference_mm: float | None = None  # the instructor's run (ModelRule.reference), when the rule names one

    @classmethod
    def prepare(cls, data_dir: str | Path, split: str, helper_dir: Path) -> HiddenSet:
        """Open DIR's split (any layout make-data or the course writes), write its frames alone into the
        helper folder; DataError names a bad folder."""
        from pose_utils.baseline import mean_pose, mean_pose_prediction
        from pose_utils.data import open_split
        from pose_utils.metrics import mpjpe, per_joint_mpjpe

        with open_split(data_dir, split) as store:
            labels = np.asarray(store.joints, dtype=np.float64)
            target = helper_dir / HIDDEN_FRAMES
            step = 64
            with atomic_path(target) as tmp:
                out = None
                for start in range(0, len(store), step):
                    frames = store.read_frames(np.arange(start, min(start + step, len(store))))
                    if out is None:  # (N, 8, H, W, 3) uint8, as the course's .npy holds them
                        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                                        shape=(len(store), *frames.shape[1:]))
                    out[start:start + len(frames)] = frames
                out.flush()
                del out
                tmp.chmod(0o644)
        mean = mean_pose_prediction(mean_pose(labels), labels.shape)
        return cls(data_dir=Path(data_dir), split=split, labels=labels, frames_path=target,
                   mean_pose_mm=1000.0 * mpjpe(labels, mean),
                   mean_pose_per_joint_mm=[round(float(v), 2)
                                           for v in 1000.0 * per_joint_mpjpe(labels, mean)])


def points_for(mpjpe_mm: float, points: float, full_at_mm: float, zero_at_mm: float) -> float:
    """`points` at or below full_at_mm, none at or above zero_at_mm, linear between (rounded to 0.01)."""
    if not np.isfinite(mpjpe_mm) or mpjpe_mm >= zero_at_mm:
        return 0.0
    if mpjpe_mm <= full_at_mm:
        return float(points)
    return round(float(points) * (zero_at_mm - mpjpe_mm) / (zero_at_mm - full_at_mm), 2)


def reference_mpjpe(run_dir: str | Path, hidden: HiddenSet) -> float:
    """MPJPE (mm) of the instructor's own finished run on the hidden clips, predicted in the grader's
    process (the instructor's model is trusted; it is never a student's). ConfigError if it is no run."""
    import keras

    from pose_utils import metrics
    from pose_utils.data import open_split
    from pose_utils.evaluate import predict
    from pose_utils.models import register_layers
    from pose_utils.targets import load_transform
    from pose_utils.training.runfolder import RunFolder

    folder = RunFolder(run_dir)
    if not folder.has_model() or not folder.transform_file.is_file():
        raise ConfigError(f"reference {run_dir}: not a finished run folder ({MODEL_FILE} and "
                          f"{TRANSFORM_FILE} are needed)")
    register_layers()
    model = keras.saving.load_model(folder.model_file, compile=False, safe_mode=True)
    with open_split(hidden.data_dir, hidden.split) as store:
        poses = predict(model, store, load_transform(folder.transform_file))
    return 1000.0 * metrics.mpjpe(hidden.labels, poses)


def count_parameters(model_file: Path, max_bytes: int) -> int:
    """Weights in a `.keras` file, from the shapes of its HDF5 datasets (nothing of the file is run).
    ValueError says why the file is no Keras model."""
    import h5py

    try:
        with zipfile.ZipFile(model_file) as archive:
            info = archive.getinfo("model.weights.h5")
            if info.file_size > max_bytes:
                raise ValueError(f"its weights unpack to {info.file_size / MiB:.0f} MiB, over the "
                                 f"{max_bytes / MiB:.0f} MiB limit")
            data = archive.read(info)
    except KeyError:
        raise ValueError("it holds no model.weights.h5 (is it a Keras 3 .keras file?)") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"not a .keras file ({e})") from None
    total = 0

    def visit(_name, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += int(np.prod(obj.shape, dtype=np.int64))

    try:
        with h5py.File(io.BytesIO(data), "r") as weights:
            weights.visititems(visit)
    except OSError as e:
        raise ValueError(f"its weights are not readable HDF5 ({e})") from None
    return total


def score_predictions(box: Path, run_dir: Path, hidden: HiddenSet, rule: ModelRule,
                      score: ModelScore) -> None:
    """Read the sandbox's predictions back (untrusted), map them to metres with the run's target transform
    and score them into `score`; a problem becomes score.problem."""
    from pose_utils import metrics
    from pose_utils.targets import transform_from_dict

    expected = (len(hidden.labels), *hidden.labels.shape[1:])
    limit = int(np.prod(expected)) * 8 + 4096  # float64 at most, plus the .npy header
    data = read_back(box, PREDICTIONS, limit=limit)
    if data is None:
        score.problem = "the model wrote no predictions (see logs/model.stderr.log)"
        return
    try:
        pred = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError) as e:
        score.problem = f"the predictions are not a NumPy array ({e})"
        return
    if pred.shape != expected or pred.dtype.kind != "f":
        score.problem = (f"the model's outputs are {pred.dtype} {pred.shape}; expected floats of shape "
                         f"{expected} (clips, frames, joints, xyz)")
        return
    if not np.all(np.isfinite(pred)):
        score.problem = f"the model's outputs hold {int(np.sum(~np.isfinite(pred)))} NaN or infinite values"
        return
    raw = read_back(run_dir, TRANSFORM_FILE, limit=1 * MiB)
    try:
        transform = transform_from_dict(json.loads(raw)) if raw is not None else None
    except (ValueError, PoseUtilsError, TypeError) as e:
        score.problem = f"{rule.run}/{TRANSFORM_FILE} is not a target transform ({e})"
        return
    if transform is None:
        score.problem = f"{rule.run}/{TRANSFORM_FILE} is missing (the engine writes it beside {MODEL_FILE})"
        return
    metres = transform.inverse(pred.astype(np.float64))
    score.mpjpe_mm = round(1000.0 * metrics.mpjpe(hidden.labels, metres), 3)
    score.p_mpjpe_mm = round(1000.0 * metrics.p_mpjpe(hidden.labels, metres), 3)
    score.per_joint_mm = [round(float(v), 2) for v in 1000.0 * metrics.per_joint_mpjpe(hidden.labels, metres)]


def thresholds(rule: ModelRule, hidden: HiddenSet) -> tuple[float, float]:
    """The rule's (full_at, zero_at) in mm on these clips, before full_at is capped at zero_at."""
    zero = hidden.mean_pose_mm if rule.zero_at_mm == "mean_pose" else float(rule.zero_at_mm)
    full = (rule.reference_factor * hidden.reference_mm if rule.full_at_mm == "reference"
            else float(rule.full_at_mm))
    return full, zero


def threshold_warning(rule: ModelRule, hidden: HiddenSet) -> str | None:
    """One line for the instructor when the full-points threshold is not below the zero-points one (a
    reference run no better than the mean pose, say): points then jump from all to none at zero_at_mm."""
    if rule.full_at_mm != "reference" or hidden.reference_mm is None:
        return None
    full, zero = thresholds(rule, hidden)
    if full < zero:
        return None
    return (f"model rule: full points at {full:.1f} mm ({rule.reference_factor:g} x your run's "
            f"{hidden.reference_mm:.1f} mm) is not below the zero-points error {zero:.1f} mm "
            f"({rule.zero_at_mm}): every model below {zero:.1f} mm gets all the points, none above; "
            f"a reference trained longer, or a smaller reference_factor, makes the scale linear")


def grade_model(run_model, repo: Path, hidden: HiddenSet, rule: ModelRule) -> ModelScore:
    """Step 2b for one staged submission. run_model() runs the prediction of the submission's
    `rule.run` in the sandbox and returns (box: the folder it wrote in, timed out, one line when it
    failed). Never raises for a bad model."""
    full, zero = thresholds(rule, hidden)
    baselines = {"mean pose": round(hidden.mean_pose_mm, 3)}
    if hidden.reference_mm is not None:
        baselines["the instructor's model"] = round(hidden.reference_mm, 3)
    score = ModelScore(points=float(rule.points), full_at_mm=round(min(full, zero), 3),
                       zero_at_mm=round(zero, 3), baselines=baselines,
                       baseline_per_joint_mm=hidden.mean_pose_per_joint_mm)
    run_dir = repo / rule.run
    model_file = run_dir / MODEL_FILE
    if run_dir.is_symlink() or not run_dir.is_dir():
        score.problem = f"no run folder {rule.run}/ in the submission (train the challenge model into it)"
        return score
    if model_file.is_symlink() or not model_file.is_file():
        score.problem = f"{rule.run}/model.keras is missing (a run that finished saves it)"
        return score
    size = model_file.stat().st_size
    if size > rule.max_model_mb * MiB:
        score.problem = (f"{rule.run}/model.keras is {size / MiB:.1f} MiB, over the "
                         f"{rule.max_model_mb:g} MiB limit")
        return score
    try:
        score.parameters = count_parameters(model_file, int(4 * rule.max_model_mb * MiB))
    except ValueError as e:
        score.problem = f"{rule.run}/model.keras: {e}"
        return score
    if score.parameters > rule.max_parameters:
        score.problem = (f"{rule.run}/model.keras has {score.parameters:,} parameters, over the budget of "
                         f"{rule.max_parameters:,}")
        return score
    tic = time.monotonic()
    box, timed_out, error = run_model()
    score.seconds = round(time.monotonic() - tic, 2)
    if timed_out:
        score.problem = f"loading and predicting took longer than {rule.predict_seconds:g} s"
        return score
    if error:
        score.problem = error
        return score
    score_predictions(box, run_dir, hidden, rule, score)
    if score.problem is None:
        score.earned = points_for(score.mpjpe_mm, rule.points, score.full_at_mm, zero)
    return score
