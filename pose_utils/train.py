"""Training: the report's recipe (GradientTape loop, Adam 1e-4, MSE eq. 2, batch 5, 30 epochs), compiled.

`train(data_dir, run_dir, TrainConfig(...))` or `python -m pose_utils train --data DIR --out RUN_DIR`.
The step is the report's loop, `GradientTape` → gradients → `Adam.apply`, compiled with `tf.function`
(XLA only if `jit_compile=True`: it was slower on our CPU, see docs/training.md). The loss is eq. (2)
on the transformed targets (the seed's sigmoid head needs min-max scaled ones); MPJPE is reported in
millimetres after mapping predictions and labels back to metres (`TargetTransform.inverse`).

Run folder (everything written atomically; a kill at any moment leaves the last good state):

    config.json            TrainConfig.to_dict()
    data.json              what the run was trained on: frame shape, clip counts, folder, units
    target_transform.json  the transform fitted on the training labels
    mean_pose.json         the mean training pose (17, 3) metres: the baseline `evaluate` reports
    checkpoint.json        pointer to the last good checkpoint + the history up to it
    checkpoints/ckpt-E.*   tf.train.Checkpoint: model variables, optimizer state, epoch (nothing pickled)
    history.json           per-epoch lists (HISTORY_KEYS, + KEYPOINT_HISTORY_KEY); MPJPE in mm
    model.keras            the final model (Keras format, loads in safe mode)
    tb/                    TensorBoard scalars

Exact resume: the clip order of epoch e is a pure function of (seed, e) (`data.epoch_order`), the
initial weights come from the seed, and the checkpoint holds every variable (model variables including
random-generator states, Adam moments and step count, loss scale), so a run killed after epoch k and
resumed ends where an uninterrupted run ends (bitwise on one machine with the same thread count).

Distribution uses TensorFlow's strategies with the same loop: "default" (one device, a GPU if present),
"mirrored" (all local GPUs, or `cpu_replicas` logical CPUs), "multiworker" (`TF_CONFIG`). The loss of
each replica is its share of the global batch's sum divided by the global clip count, so the summed
gradients equal the single-device gradient; a final batch smaller than the replica count is padded
with zero-weight clips, because an empty replica batch crashes the LSTM kernel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError, TrainingError
from .fileio import atomic_path, read_json, write_json
from .skeleton import JOINT_NAMES

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multiworker")
# "cosine": the learning rate falls from learning_rate to COSINE_FLOOR x learning_rate along half a cosine
# over the run's steps; the last epochs then average out the batch-to-batch noise of a constant rate.
LR_SCHEDULES = ("constant", "cosine")
COSINE_FLOOR = 0.01
# "mse": the report's eq. 2, mean squared error in the target space. "mpjpe": the metric itself, the mean
# Euclidean joint error in metres; it pulls less hard on the few large errors than a square does, so an
# ambiguous pose (front or back?) is not pulled to the average of its answers.
LOSSES = ("mse", "mpjpe")
HISTORY_KEYS = ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe", "epoch_seconds", "clips_per_second")
# Also in the history of a run with keypoint_loss: the training clips' mean 2-D keypoint error per epoch.
KEYPOINT_HISTORY_KEY = "train_keypoint_error"
# Config keys that change how fast a run trains, never what it computes.
SPEED_KEYS = ("cache_frames",)
# Config keys a resumed run may change: they say how long or how fast to train, not what is trained.
RESUMABLE_CHANGES = ("epochs",) + SPEED_KEYS


@dataclass
class TrainConfig:
    """Everything that decides a training run; the defaults are the report's recipe.

    target_transform: None uses the model's own (`models.model_spec(model).target_transform`).
    jit_compile: compile the step with XLA. eval_batch_size: batch for validation and prediction.
    lr_schedule: "constant" (the report's) or "cosine" (decay over `epochs`; see LR_SCHEDULES).
    roll_augment: turn each training clip and its labels by up to this many degrees in the image plane
    (a camera roll, `data.roll_clips`); 0 for none. loss: what training minimises (LOSSES); the history's
    train_loss / val_loss are the report's MSE either way. keypoint_loss: weight of an extra training
    loss, the mean 2-D distance (normalised image units) between the joints' projections
    (`ClipStore.keypoints`, HDF5 data only) and keypoints read off the CNN backbone
    (`variants.keypoint_model`); 0 for none. It shapes the backbone only: the saved model is the pose
    model alone.
    max_train_clips / max_valid_clips: use that many clips spread evenly over the split (None: all).
    cache_frames: hold both splits' frames in memory (`ClipStore.cache_frames`): same results, faster
    epochs when they fit (a ConfigError says when they do not).
    units: unit of the stored labels ("m" or "mm"); training always works in metres.
    """

    model: str = "seed"
    epochs: int = 30
    batch_size: int = 5
    learning_rate: float = 1e-4
    seed: int = 0
    precision: str = "float32"
    strategy: str = "default"
    cpu_replicas: int | None = None
    max_train_clips: int | None = None
    max_valid_clips: int | None = None
    units: str = "m"
    flip_augment: bool = False
    model_options: dict = field(default_factory=dict)
    target_transform: str | None = None
    jit_compile: bool = False
    eval_batch_size: int = 32
    lr_schedule: str = "constant"
    roll_augment: float = 0.0
    loss: str = "mse"
    keypoint_loss: float = 0.0
    cache_frames: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first bad value."""
        from .models import model_spec
        from .transforms import KINDS

        def positive_int(name, optional=False):
            value = getattr(self, name)
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")

        for name in ("epochs", "batch_size", "eval_batch_size"):
            positive_int(name)
        for name in ("cpu_replicas", "max_train_clips", "max_valid_clips"):
            positive_int(name, optional=True)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr < math.inf):
            raise ConfigError(f"learning_rate must be a positive finite number, got {lr!r}")
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, (int, np.integer))
            or not 0 <= self.seed < 2**32
        ):
            raise ConfigError(f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        for name, allowed in (("precision", PRECISIONS), ("strategy", STRATEGIES), ("units", ("m", "mm")),
                              ("lr_schedule", LR_SCHEDULES), ("loss", LOSSES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("flip_augment", "jit_compile", "cache_frames"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        roll = self.roll_augment
        if isinstance(roll, bool) or not isinstance(roll, (int, float)) or not 0 <= roll <= 180:
            raise ConfigError(f"roll_augment must be a number of degrees in [0, 180], got {roll!r}")
        kp = self.keypoint_loss
        if isinstance(kp, bool) or not isinstance(kp, (int, float)) or not 0 <= kp < math.inf:
            raise ConfigError(f"keypoint_loss must be a finite number >= 0, got {kp!r}")
        if not isinstance(self.model_options, dict) or not all(
            isinstance(k, str) for k in self.model_options
        ):
            raise ConfigError(f"model_options must be a dict with string keys, got {self.model_options!r}")
        if self.target_transform is not None and self.target_transform not in KINDS:
            raise ConfigError(
                f"target_transform must be one of {', '.join(KINDS)} or None, got {self.target_transform!r}"
            )
        if self.cpu_replicas is not None and self.strategy != "mirrored":
            raise ConfigError(
                f"cpu_replicas={self.cpu_replicas} needs strategy 'mirrored', got {self.strategy!r}"
            )
        model_spec(self.model)  # ConfigError listing the known models

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict (e.g. config.json); unknown keys are a ConfigError naming them."""
        if not isinstance(d, dict):
            raise ConfigError(f"a training config must be a dict, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"unknown training config key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @property
    def transform_kind(self) -> str:
        from .models import model_spec

        return self.target_transform or model_spec(self.model).target_transform


def subset(n: int, limit: int | None) -> np.ndarray:
    """`limit` clip indices spread evenly over 0..n-1 (all of them if limit is None or >= n).

    Spread rather than the first ones, so a small subset still sees every subject, action and camera.
    """
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


# ----------------------------------------------------------------------------- devices and precision


def configure_cpu_replicas(n: int) -> None:
    """Split the CPU into n logical devices for MirroredStrategy. Must run before any TF operation."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:  # the runtime is already up: fine only if it already has n logical CPUs
        have = len(tf.config.list_logical_devices("CPU"))
        if have != n:
            raise ConfigError(
                f"cpu_replicas={n} must be set before TensorFlow runs its first operation, but this process "
                f"already runs with {have} logical CPU(s); start a fresh process (or restart the kernel) "
                "and train before anything else touches TensorFlow"
            ) from None


def make_strategy(config: TrainConfig):
    """The tf.distribute strategy for `config.strategy` (call before any other TF work)."""
    import tensorflow as tf

    if config.strategy == "default":
        return tf.distribute.get_strategy()
    if config.strategy == "mirrored":
        if config.cpu_replicas:
            configure_cpu_replicas(config.cpu_replicas)
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    try:  # multiworker: the cluster comes from TF_CONFIG; without it this is one local worker
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as e:
        raise ConfigError(
            f"strategy 'multiworker' could not start ({e}); check TF_CONFIG and start it "
            "in a fresh process before other TensorFlow work"
        ) from None


def _is_chief(strategy) -> bool:
    """Only the chief writes files under multiworker; every worker runs the same loop."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


@contextlib.contextmanager
def precision_policy(name: str):
    """Build models under a Keras dtype policy, restoring the previous global policy afterwards."""
    import keras

    if name == "mixed_bfloat16" and not _has_native_bf16():
        warnings.warn(
            "mixed_bfloat16 without a GPU or AVX512_BF16/AMX CPU is usually slower than float32", stacklevel=3
        )
    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(old)


def _check_precision_support(config: TrainConfig) -> None:
    import tensorflow as tf

    if (
        config.precision == "mixed_float16"
        and not config.jit_compile
        and not tf.config.list_physical_devices("GPU")
    ):
        raise ConfigError(
            "precision mixed_float16 on a CPU needs jit_compile (--jit-compile): TensorFlow has no float16 "
            "CPU kernels for some layers (MaxPool3D); on CPUs, mixed_bfloat16 is the fast choice"
        )


def _has_native_bf16() -> bool:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return True
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return True  # unknown platform: do not warn


# ----------------------------------------------------------------------------- the run folder


def _read_config(run_dir: Path) -> TrainConfig:
    try:
        return TrainConfig.from_dict(read_json(run_dir / "config.json"))
    except ConfigError as e:
        raise ConfigError(f"{run_dir / 'config.json'}: {e}") from None


def _resolve_config(run_dir: Path, config, resume: bool) -> TrainConfig:
    """The config to train with: given, saved, or saved + given with only RESUMABLE_CHANGES differing."""
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    has_checkpoint = (run_dir / "checkpoint.json").is_file()
    if not resume:
        if has_checkpoint:
            raise ConfigError(
                f"{run_dir} already holds a training run; pass --resume (resume=True) to continue "
                "it, or choose another output folder"
            )
        return config or TrainConfig()
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"nothing to resume in {run_dir}: no config.json (start it without --resume)")
    saved = _read_config(run_dir)
    if has_checkpoint:
        done = read_json(run_dir / "checkpoint.json")["epoch"]
        wanted = (config or saved).epochs
        if wanted < done:
            raise ConfigError(
                f"{run_dir} has already trained {done} epochs; epochs={wanted} cannot be resumed"
            )
    if config is None:
        return saved
    differ = [k for k, v in config.to_dict().items() if v != getattr(saved, k) and k not in RESUMABLE_CHANGES]
    if differ:
        changes = ", ".join(f"{k}: {getattr(saved, k)!r} -> {getattr(config, k)!r}" for k in differ)
        raise ConfigError(
            f"cannot resume {run_dir} with a different config ({changes}); only "
            f"{', '.join(RESUMABLE_CHANGES)} may change"
        )
    return config


def _check_data_matches(run_dir: Path, info: dict) -> None:
    saved = read_json(run_dir / "data.json")
    if list(saved["frame_shape"]) != list(info["frame_shape"]):
        (h, w), (sh, sw) = info["frame_shape"], saved["frame_shape"]
        raise DataError(
            f"the data has {h}x{w} frames but the run in {run_dir} was trained on {sh}x{sw} frames"
        )
    for key in ("train_clips", "valid_clips"):
        if saved[key] != info[key]:
            raise DataError(
                f"the data gives {info[key]} {key.replace('_', ' ')} but the run in {run_dir} "
                f"was trained with {saved[key]}; resume on the same data"
            )


def _write_mean_pose(path: Path, joints: np.ndarray) -> None:
    mean = joints.reshape(-1, len(JOINT_NAMES), 3).astype(np.float64).mean(axis=0)
    write_json(path, {"units": "m", "joints": list(JOINT_NAMES), "mean_pose": mean.tolist()})


def read_mean_pose(run_dir: str | os.PathLike) -> np.ndarray:
    """The run's mean training pose, (17, 3) metres."""
    path = Path(run_dir) / "mean_pose.json"
    pose = np.asarray(read_json(path).get("mean_pose"), dtype=np.float64)
    if pose.shape != (len(JOINT_NAMES), 3):
        raise DataError(f"{path}: mean_pose has shape {pose.shape}, expected (17, 3)")
    return pose


# ----------------------------------------------------------------------------- training


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """Adam's learning rate: the number, or a schedule over `config.epochs` x `steps_per_epoch` steps.

    The schedule reads the optimizer's step counter, which the checkpoint holds, so a resumed run goes on
    where it stopped. Resuming with more epochs stretches the cosine from that point on.
    """
    import keras

    if config.lr_schedule == "constant":
        return config.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=COSINE_FLOOR
    )


def _smooth_mean_distance(d):
    """Mean length of the vectors d (B, T, J, D) per clip, (B,): sqrt(|d|² + 1e-12), so the gradient is
    finite at d = 0 where tf.norm's is NaN."""
    import tensorflow as tf

    return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(d), axis=-1) + 1e-12), axis=[1, 2])


class _Trainer:
    """The model, optimizer, compiled steps and checkpoint of one run, built inside the strategy scope."""

    def __init__(self, config: TrainConfig, strategy, frame_size: int, transform, steps_per_epoch: int):
        import keras
        import tensorflow as tf

        from .models import build_model
        from .variants import keypoint_model

        self.config, self.strategy, self.transform = config, strategy, transform
        self.steps_per_epoch = steps_per_epoch
        self.replicas = strategy.num_replicas_in_sync
        keras.utils.set_random_seed(config.seed)  # Python, NumPy, TF and Keras generators
        # Deterministic kernels: same seed, same bits (on one machine and thread count). Process-wide.
        tf.config.experimental.enable_op_determinism()
        with precision_policy(config.precision), strategy.scope():
            self.model = build_model(config.model, frame_size=frame_size, **config.model_options)
            # With keypoint_loss the step trains the pose model plus a 2-D head on its backbone.
            self.train_model = keypoint_model(self.model) if config.keypoint_loss else self.model
            optimizer = keras.optimizers.Adam(learning_rate(config, steps_per_epoch))
            if config.precision == "mixed_float16":  # float16 gradients underflow without loss scaling
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            # Under tf.distribute the slots must exist before the first step (NOTES.md).
            optimizer.build(self.train_model.trainable_variables)
            self.optimizer = optimizer
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        # model.variables includes non-trainable state (random-generator seeds, norm statistics). The
        # keypoint head is kept apart, so the pose model's checkpoint entry reads the same with or without it.
        head = {"keypoint_head": list(self.train_model.get_layer("keypoint_maps").variables)} \
            if config.keypoint_loss else {}
        self.checkpoint = tf.train.Checkpoint(
            model_variables=list(self.model.variables), optimizer=self.optimizer, epoch=self.epoch, **head
        )
        # The compiled steps are made on first use, with the datasets' element specs as signatures
        # (batch dimension None): one trace per run, whatever the size of the last batch.
        self.train_step = self.eval_step = None

    def _per_clip(self, y, pred):
        """Per-clip MSE (eq. 2, transformed space) and MPJPE (metres), both (B,) float32."""
        import tensorflow as tf

        pred = tf.cast(pred, tf.float32)
        mse = tf.reduce_mean(tf.square(pred - y), axis=[1, 2, 3])
        err = tf.norm(self.transform.inverse(pred) - self.transform.inverse(y), axis=-1)
        return mse, tf.reduce_mean(err, axis=[1, 2])

    def _smooth_mpjpe(self, y, pred):
        """Per-clip MPJPE (metres, (B,)) with a gradient everywhere: tf.norm's is NaN at a zero error,
        which the pelvis (0 in every label, and in every prediction of a standardised head) always has."""
        import tensorflow as tf

        d = self.transform.inverse(tf.cast(pred, tf.float32)) - self.transform.inverse(y)
        return _smooth_mean_distance(d)

    @staticmethod
    def _keypoint_error(keypoints, points):
        """Per-clip mean 2-D distance (normalised image units, (B,)), smooth at 0 like `_smooth_mpjpe`."""
        import tensorflow as tf

        return _smooth_mean_distance(tf.cast(points, tf.float32) - keypoints)

    def _replica_train_step(self, x, y, w, keypoints=None):
        import tensorflow as tf

        ctx = tf.distribute.get_replica_context()
        clips = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(w))
        variables = self.train_model.trainable_variables
        with tf.GradientTape() as tape:
            if keypoints is None:
                pred = self.model(x, training=True)
                kp_err = tf.zeros_like(w)
            else:
                pred, points = self.train_model(x, training=True)
                kp_err = self._keypoint_error(keypoints, points)
            mse, err = self._per_clip(y, pred)
            per_clip = mse if self.config.loss == "mse" else self._smooth_mpjpe(y, pred)
            per_clip = per_clip + self.config.keypoint_loss * kp_err
            loss = tf.reduce_sum(per_clip * w) / clips  # this replica's share of the global batch mean
            scaled = self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16, else unchanged
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)  # sums gradients over replicas
        return tf.reduce_sum(mse * w), tf.reduce_sum(err * w), tf.reduce_sum(w), tf.reduce_sum(kp_err * w)

    def _distributed_train_step(self, *batch):
        """One step on (frames, targets, weights) or (frames, targets, weights, keypoints). Returns the
        sums over the batch of per-clip loss, MPJPE (m), clips and 2-D keypoint error (0 without)."""
        import tensorflow as tf

        sums = self.strategy.run(self._replica_train_step, args=batch)
        return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

    def _eval_step(self, x, y):
        import tensorflow as tf

        mse, err = self._per_clip(y, self.model(x, training=False))
        return tf.reduce_sum(mse), tf.reduce_sum(err), tf.cast(tf.shape(x)[0], tf.float32)

    def train_dataset(self, store, indices, epoch):
        """One epoch of (frames, targets, weights), plus keypoints with keypoint_loss, distributed;
        weights 0 mark padding clips."""
        import tensorflow as tf

        from .data import tf_dataset

        ds = tf_dataset(
            store,
            self.config.batch_size,
            shuffle=True,
            seed=self.config.seed,
            epoch=epoch,
            indices=indices,
            flip_augment=self.config.flip_augment,
            roll_augment=self.config.roll_augment,
            keypoints=bool(self.config.keypoint_loss),
            target_transform=self.transform,
        )
        replicas = self.replicas

        def pad(x, y, *keypoints):
            n = tf.shape(x)[0]
            extra = tf.maximum(replicas - n, 0)
            w = tf.concat([tf.ones([n]), tf.zeros([extra])], axis=0)
            x, y, *keypoints = (tf.pad(t, [[0, extra]] + [[0, 0]] * (len(t.shape) - 1))
                                for t in (x, y, *keypoints))
            return (x, y, w, *keypoints)

        ds = ds.map(pad)
        options = tf.data.Options()
        # Clips are read by index inside the pipeline, so there are no files to shard over workers.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dist = self.strategy.experimental_distribute_dataset(ds.with_options(options))
        if self.train_step is None:
            self.train_step = tf.function(
                self._distributed_train_step,
                input_signature=list(dist.element_spec),
                jit_compile=self.config.jit_compile or None,
            )
        return dist

    def evaluate(self, store, indices) -> np.ndarray:
        """[sum of per-clip loss, sum of per-clip MPJPE (m), clips] over `indices` of `store`.

        Runs on one device in the cross-replica context: exact for any number of clips.
        """
        import tensorflow as tf

        from .data import tf_dataset

        ds = tf_dataset(
            store,
            self.config.eval_batch_size,
            shuffle=False,
            indices=indices,
            target_transform=self.transform,
        )
        if self.eval_step is None:
            self.eval_step = tf.function(
                self._eval_step,
                input_signature=list(ds.element_spec),
                jit_compile=self.config.jit_compile or None,
            )
        totals = np.zeros(3)
        for x, y in ds:
            totals += [float(v) for v in self.eval_step(x, y)]
        return totals


class _Checkpoints:
    """checkpoints/ckpt-E.* plus checkpoint.json pointing at the last complete one (written after it)."""

    def __init__(self, run_dir: Path, checkpoint, chief: bool):
        self.run_dir, self.checkpoint, self.chief = run_dir, checkpoint, chief
        self.pointer = run_dir / "checkpoint.json"

    def restore(self) -> dict | None:
        """Load the last good checkpoint; return its pointer record (epoch, history) or None."""
        if not self.pointer.is_file():
            return None
        record = read_json(self.pointer)
        prefix = self.run_dir / record["prefix"]
        try:
            self.checkpoint.read(str(prefix)).assert_existing_objects_matched()
        except (ValueError, AssertionError, OSError) as e:  # tf raises NotFoundError (an OSError) too
            raise DataError(f"{prefix}: cannot restore the checkpoint ({e})") from None
        return record

    def save(self, epoch: int, history: dict) -> None:
        import shutil
        import tempfile

        if not self.chief:  # every worker must take part in writing; only the chief keeps it
            tmp = Path(tempfile.mkdtemp(prefix="pose_utils_worker_ckpt_"))
            self.checkpoint.write(str(tmp / "ckpt"))
            shutil.rmtree(tmp, ignore_errors=True)
            return
        prefix = f"checkpoints/ckpt-{epoch}"
        self.checkpoint.write(str(self.run_dir / prefix))
        write_json(self.pointer, {"epoch": epoch, "prefix": prefix, "history": history})
        self.remove_stale(keep=prefix)

    def remove_stale(self, keep: str | None) -> None:
        """Delete checkpoint files other than `keep` (older epochs, or ones a kill left half-written)."""
        folder = self.run_dir / "checkpoints"
        if not self.chief or not folder.is_dir():
            return
        keep_name = Path(keep).name if keep else None
        for path in folder.iterdir():
            if path.name.split(".")[0] != keep_name:
                with contextlib.suppress(OSError):
                    path.unlink()


def train(
    data_dir, run_dir, config: TrainConfig | dict | None = None, resume: bool = False, progress: bool = True
) -> dict:
    """Train `config.model` on DATA_DIR's train split, validating on its valid split, into RUN_DIR.

    resume: continue from RUN_DIR's last checkpoint (config None: the saved one; otherwise only
    `epochs` may differ). Returns the history: HISTORY_KEYS -> one value per epoch (loss in the target
    space, MPJPE in mm). Raises ConfigError / DataError for bad settings or data, TrainingError when the
    loss becomes non-finite (the last good checkpoint stays).
    """
    run_dir = Path(run_dir)
    config = _resolve_config(run_dir, config, resume)
    from .data import open_split
    from .transforms import fit_transform, load_transform, save_transform

    with contextlib.ExitStack() as stack:
        # Data first (NumPy and h5py only, so bad folders fail fast), then TensorFlow.
        train_store = stack.enter_context(open_split(data_dir, "train", config.units))
        valid_store = stack.enter_context(open_split(data_dir, "valid", config.units))
        if train_store.frame_shape != valid_store.frame_shape:
            raise DataError(
                f"{data_dir}: train frames are {train_store.frame_shape} but valid frames are "
                f"{valid_store.frame_shape}"
            )
        frame_size = train_store.frame_size  # DataError for non-square frames
        if config.keypoint_loss:
            _ = train_store.keypoints  # DataError now for data without the 2-D labels' ingredients
        if config.cache_frames:
            for store in (train_store, valid_store):
                store.cache_frames(progress)
        _check_precision_support(config)
        # Before any TF op: logical CPUs and collectives need a fresh runtime.
        strategy = make_strategy(config)
        chief = _is_chief(strategy)
        if config.batch_size < strategy.num_replicas_in_sync:
            raise ConfigError(
                f"batch_size {config.batch_size} is smaller than the {strategy.num_replicas_in_sync} "
                "replicas; every replica needs at least one clip"
            )
        train_idx = subset(len(train_store), config.max_train_clips)
        valid_idx = subset(len(valid_store), config.max_valid_clips)
        info = {
            "frame_shape": list(train_store.frame_shape),
            "train_clips": len(train_idx),
            "valid_clips": len(valid_idx),
            "data_dir": str(Path(data_dir).resolve()),
            "units": config.units,
            "layout": train_store.layout,
        }
        started = (run_dir / "data.json").is_file() and resume
        if started:
            _check_data_matches(run_dir, info)
            transform = load_transform(run_dir / "target_transform.json")
        else:
            transform = fit_transform(config.transform_kind, train_store.joints[train_idx])
            if chief:
                write_json(run_dir / "config.json", config.to_dict())
                write_json(run_dir / "data.json", info)
                save_transform(run_dir / "target_transform.json", transform)
                _write_mean_pose(run_dir / "mean_pose.json", train_store.joints[train_idx])
        if chief and resume:
            write_json(run_dir / "config.json", config.to_dict())  # epochs may have grown

        trainer = _Trainer(config, strategy, frame_size, transform,
                           steps_per_epoch=math.ceil(len(train_idx) / config.batch_size))
        checkpoints = _Checkpoints(run_dir, trainer.checkpoint, chief)
        record = checkpoints.restore() if resume else None
        history = (
            {k: list(v) for k, v in record["history"].items()} if record else {k: [] for k in HISTORY_KEYS}
        )
        start = record["epoch"] if record else 0
        checkpoints.remove_stale(keep=record["prefix"] if record else None)
        if start < config.epochs and chief:
            with contextlib.suppress(FileNotFoundError):
                (run_dir / "model.keras").unlink()  # stale until this run finishes
        splits = (train_store, train_idx, valid_store, valid_idx)
        return _fit(trainer, checkpoints, splits, history, start, run_dir, progress)


def _fit(trainer, checkpoints, splits, history: dict, start: int, run_dir: Path, progress: bool) -> dict:
    """Epochs start+1..config.epochs: train, validate, checkpoint, log. Returns the history."""
    import tensorflow as tf
    from tqdm.auto import tqdm

    config, chief = trainer.config, checkpoints.chief
    train_store, train_idx, valid_store, valid_idx = splits
    writer = tf.summary.create_file_writer(str(run_dir / "tb")) if chief else None
    steps = trainer.steps_per_epoch
    for epoch in range(start, config.epochs):
        tic = time.perf_counter()
        totals = np.zeros(4)  # sums of per-clip loss, MPJPE (m), clips, 2-D keypoint error
        # disable only when asked: an explicit disable=False would override TQDM_DISABLE=1.
        bar = tqdm(
            total=steps,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="step",
            leave=False,
            **({} if progress else {"disable": True}),
        )
        with bar:
            for step, batch in enumerate(trainer.train_dataset(train_store, train_idx, epoch), start=1):
                sums = np.array([float(v) for v in trainer.train_step(*batch)])
                if not np.all(np.isfinite(sums)):
                    raise _nonfinite(
                        "training", sums, f"at epoch {epoch + 1}, step {step}", epoch, run_dir, config
                    )
                totals += sums
                bar.update()
                bar.set_postfix(
                    loss=f"{totals[0] / totals[2]:.4g}", mpjpe=f"{1000 * totals[1] / totals[2]:.1f}mm",
                    **({"kp": f"{totals[3] / totals[2]:.3f}"} if config.keypoint_loss else {}),
                )
        train_seconds = time.perf_counter() - tic
        val_sums = trainer.evaluate(valid_store, valid_idx)
        if not np.all(np.isfinite(val_sums)):  # never checkpoint weights that predict NaN or infinity
            raise _nonfinite("validation", val_sums, f"after epoch {epoch + 1}", epoch, run_dir, config)
        val_loss, val_mpjpe = val_sums[0] / val_sums[2], 1000.0 * val_sums[1] / val_sums[2]
        trainer.epoch.assign(epoch + 1)
        row = {
            "train_loss": totals[0] / totals[2],
            "val_loss": val_loss,
            "train_mpjpe": 1000.0 * totals[1] / totals[2],
            "val_mpjpe": val_mpjpe,
            "epoch_seconds": time.perf_counter() - tic,
            "clips_per_second": len(train_idx) / train_seconds,
        }
        for key in HISTORY_KEYS:
            history[key].append(float(row[key]))
        if config.keypoint_loss:  # mean 2-D distance, normalised image units (keypoints.py)
            history.setdefault(KEYPOINT_HISTORY_KEY, []).append(float(totals[3] / totals[2]))
        # Checkpoint first, history second: the pointer file carries the history too, so a kill in
        # between loses nothing and resume rewrites history.json from it.
        checkpoints.save(epoch + 1, history)
        if chief:
            write_json(run_dir / "history.json", history)
            with writer.as_default(step=epoch + 1):
                for key in ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe", "clips_per_second"):
                    tf.summary.scalar(key, row[key])
            writer.flush()
        if progress:
            tqdm.write(
                f"epoch {epoch + 1}/{config.epochs}: loss {row['train_loss']:.5f} / {val_loss:.5f}, "
                f"MPJPE {row['train_mpjpe']:.1f} / {val_mpjpe:.1f} mm (train / valid), "
                f"{row['clips_per_second']:.1f} clips/s"
                + (f", 2-D keypoint error {totals[3] / totals[2]:.3f}" if config.keypoint_loss else "")
            )
    if chief:
        write_json(run_dir / "history.json", history)
        if start < config.epochs or not (run_dir / "model.keras").is_file():
            with atomic_path(run_dir / "model.keras") as tmp:
                trainer.model.save(tmp)
    return history


def _nonfinite(
    phase: str, sums: np.ndarray, where: str, finished: int, run_dir: Path, config
) -> TrainingError:
    """The error for a NaN or infinite loss/MPJPE; `finished` epochs have a checkpoint."""
    name, value = ("loss", sums[0] / sums[2]) if not np.isfinite(sums[0]) else ("MPJPE", sums[1] / sums[2])
    kept = (
        f"the checkpoint of epoch {finished} in {run_dir} is kept"
        if finished
        else "no epoch had finished, so there is no checkpoint"
    )
    return TrainingError(
        f"the {phase} {name} became {value} {where}; training stopped and {kept}; look for extreme labels, "
        f"or try a learning rate below {config.learning_rate:g}"
    )


# ----------------------------------------------------------------------------- using a run


@dataclass
class Run:
    """A trained run folder: model (keras.Model), transform, config, history, mean_pose (17, 3) metres."""

    run_dir: Path
    model: object
    transform: object
    config: TrainConfig
    history: dict
    mean_pose: np.ndarray
    data: dict


def load_run(run_dir) -> Run:
    """Load a run: model.keras in Keras safe mode, or, for an unfinished run, the last checkpoint."""
    import keras
    import tensorflow as tf

    from .models import build_model
    from .transforms import load_transform

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise DataError(f"{run_dir}: not a run folder (no config.json)")
    config = _read_config(run_dir)
    data = read_json(run_dir / "data.json")
    transform = load_transform(run_dir / "target_transform.json")
    model_path = run_dir / "model.keras"
    if model_path.is_file():
        try:
            model = keras.models.load_model(model_path, compile=False, safe_mode=True)
        except (ValueError, OSError, TypeError) as e:
            raise DataError(f"{model_path}: cannot load the model ({e})") from None
    elif (run_dir / "checkpoint.json").is_file():
        record = read_json(run_dir / "checkpoint.json")
        with precision_policy(config.precision):
            model = build_model(config.model, frame_size=int(data["frame_shape"][0]), **config.model_options)
        status = tf.train.Checkpoint(model_variables=list(model.variables)).read(
            str(run_dir / record["prefix"])
        )
        status.expect_partial()  # the optimizer state is not needed to predict
    else:
        raise DataError(f"{run_dir}: no model.keras and no checkpoint; the run has not finished an epoch")
    history_path = run_dir / "history.json"
    history = read_json(history_path) if history_path.is_file() else {k: [] for k in HISTORY_KEYS}
    return Run(run_dir, model, transform, config, history, read_mean_pose(run_dir), data)


def predict(model, store, transform, batch_size: int = 32, indices=None,
            flip_test: bool = False) -> np.ndarray:
    """Poses for the clips `indices` (default all) of `store`: (N, 8, 17, 3) float32 metres, in order.

    flip_test: also predict every clip mirrored left-right, mirror that prediction back
    (`skeleton.flip_left_right`: x -> -x, left/right labels swapped) and average the two. Twice the
    prediction time; exact as a test-time augmentation because the principal point is the frame centre.
    """
    import tensorflow as tf

    from .data import tf_dataset
    from .skeleton import flip_left_right

    step = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), reduce_retracing=True)
    outputs, mirrored = [], []
    for x, _ in tf_dataset(store, batch_size, shuffle=False, indices=indices):
        outputs.append(step(x).numpy())
        if flip_test:
            mirrored.append(step(tf.reverse(x, axis=[3])).numpy())  # (B, T, H, W, C): axis 3 is the width
    if not outputs:
        return np.zeros((0, store.num_frames, len(JOINT_NAMES), 3), np.float32)
    poses = transform.inverse(np.concatenate(outputs))
    if flip_test:
        poses = (poses + flip_left_right(transform.inverse(np.concatenate(mirrored)))) / 2
    return poses.astype(np.float32)


def main(args) -> int:
    """`python -m pose_utils train ...`: flags left out keep the defaults (with --resume: the saved run's)."""
    flags = {
        "model": args.model,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "lr_schedule": args.lr_schedule,
        "loss": args.loss,
        "seed": args.seed,
        "precision": args.precision,
        "strategy": args.strategy,
        "cpu_replicas": args.cpu_replicas,
        "units": args.units,
        "max_train_clips": args.max_train_clips,
        "max_valid_clips": args.max_valid_clips,
        "flip_augment": args.flip_augment,
        "roll_augment": args.roll_augment,
        "keypoint_loss": args.keypoint_loss,
        "cache_frames": args.cache_frames,
        "model_options": dict(args.model_option) if args.model_option else None,
        "jit_compile": args.jit_compile,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    run_dir = Path(args.out)
    if args.resume and (run_dir / "config.json").is_file():
        config = _read_config(run_dir).replace(**given)
    else:
        config = TrainConfig.from_dict(given)
    history = train(args.data, run_dir, config, resume=args.resume, progress=True)
    if history["val_mpjpe"]:
        print(
            f"{run_dir}: {len(history['val_mpjpe'])} epochs, "
            f"validation MPJPE {history['val_mpjpe'][-1]:.1f} mm, "
            f"model in {run_dir / 'model.keras'}"
        )
    return 0
