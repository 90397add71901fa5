"""The training engine: the report's recipe (Adam 1e-4, eq. 2, batch 5, 30 epochs), compiled, resumable.

`train(data_dir, run_dir, TrainConfig(...))` or `python -m pose_utils train --data DIR --out RUN_DIR`.
Each batch goes through `step.train_step` (GradientTape -> gradients -> `Adam.apply`, one fused pass per
variable: fused.py), compiled with
`tf.function` (XLA only if `jit_compile=True`; docs/training.md). The loss is eq. (2) on the transformed
targets (the seed's sigmoid head needs min-max scaled ones); MPJPE is reported in millimetres after
mapping predictions and labels back to metres (`TargetTransform.inverse`). The epochs are the student's
`epochs.run_epochs`, fed batch by batch and logged by `epoch_run.py`. What the run folder holds:
`runfolder.py`.

Exact resume: the clip order of epoch e is a pure function of (seed, e) (`data.epoch_order`), the
initial weights come from the seed, and the checkpoint holds every variable (model variables including
random-generator states, Adam moments and step count, loss scale), so a run killed after epoch k and
resumed ends where an uninterrupted run ends (bitwise on one machine with the same thread count).

Under tf.distribute (`distribute.py`) the loss of each replica is its share of the global batch's sum
divided by the global clip count, so the summed gradients equal the single-device gradient; a final
batch smaller than the replica count is padded with zero-weight clips, because an empty replica batch
crashes the LSTM kernel.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from pose_utils import tf_metrics
from pose_utils.data import open_split, subset, tf_dataset
from pose_utils.errors import ConfigError, DataError
from pose_utils.fileio import atomic_path, write_json
from pose_utils.targets import fit_transform, load_transform, save_transform
from pose_utils.training.checkpoints import Checkpoints
from pose_utils.training.config import (
    COSINE_FLOOR,
    HISTORY_KEYS,
    TrainConfig,
    given_flags,
)
from pose_utils.training.distribute import check_precision_support, is_chief, make_strategy, precision_policy
from pose_utils.training.epoch_run import EpochRun, log_epoch
from pose_utils.training.epochs import run_epochs
from pose_utils.training.runfolder import (
    TENSORBOARD_DIR,
    ProgressFile,
    RunFolder,
    check_data_matches,
    code_digest,
    resolve_config,
    write_mean_pose,
)
from pose_utils.training.step import train_step


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


class Trainer:
    """The model, optimizer, compiled steps and checkpoint of one run, built inside the strategy scope."""

    def __init__(self, config: TrainConfig, strategy, frame_size: int, transform, steps_per_epoch: int):
        import keras

        from pose_utils.models import build_model
        from pose_utils.models.keypoint_head import keypoint_model
        from pose_utils.training.fused import FusedAdam, fused_adam_serves

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
            # One fused pass per variable where TensorFlow's kernel serves (fused.py), else Keras's Adam.
            adam = FusedAdam if fused_adam_serves(config.precision, self.replicas) else keras.optimizers.Adam
            optimizer = adam(learning_rate(config, steps_per_epoch))
            if config.precision == "mixed_float16":  # float16 gradients underflow without loss scaling
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            # Under tf.distribute the slots must exist before the first step (else: uninitialised slots).
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
        inverse = self.transform.inverse
        return (tf_metrics.mse_per_clip(y, pred),
                tf_metrics.mpjpe_per_clip(inverse(y), inverse(tf.cast(pred, tf.float32))))

    def _replica_train_step(self, x, y, w, keypoints=None):
        ctx = tf.distribute.get_replica_context()
        clips = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(w))
        inverse, config = self.transform.inverse, self.config

        def loss_of(outputs):
            pred, points = outputs if keypoints is not None else (outputs, None)
            if config.loss == "mse":
                per_clip = tf_metrics.mse_per_clip(y, pred)
            else:
                pred_m = inverse(tf.cast(pred, tf.float32))
                per_clip = tf_metrics.mpjpe_per_clip(inverse(y), pred_m, smooth=True)
            if points is not None:  # mean 2-D distance, normalised image units
                per_clip += config.keypoint_loss * tf_metrics.mpjpe_per_clip(keypoints, points, smooth=True)
            loss = tf.reduce_sum(per_clip * w) / clips  # this replica's share of the global batch mean
            return self.optimizer.scale_loss(loss)  # loss scaling under mixed_float16, else unchanged

        # The optimizer sums the gradients over replicas.
        _, outputs = train_step(self.train_model, self.optimizer, x, loss_of)
        pred, points = outputs if keypoints is not None else (outputs, None)
        mse, err = self._per_clip(y, pred)
        kp_err = (tf.zeros_like(w) if points is None
                  else tf_metrics.mpjpe_per_clip(keypoints, points, smooth=True))
        return tf.reduce_sum(mse * w), tf.reduce_sum(err * w), tf.reduce_sum(w), tf.reduce_sum(kp_err * w)

    def _distributed_train_step(self, *batch):
        """One step on (frames, targets, weights) or (frames, targets, weights, keypoints). Returns the
        sums over the batch of per-clip loss, MPJPE (m), clips and 2-D keypoint error (0 without)."""
        sums = self.strategy.run(self._replica_train_step, args=batch)
        return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None) for s in sums]

    def _eval_step(self, x, y):
        mse, err = self._per_clip(y, self.model(x, training=False))
        return tf.reduce_sum(mse), tf.reduce_sum(err), tf.cast(tf.shape(x)[0], tf.float32)

    def train_dataset(self, store, indices, epoch):
        """One epoch of (frames, targets, weights), plus keypoints with keypoint_loss, distributed;
        weights 0 mark padding clips."""
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

    def eval_batches(self, indices) -> int:
        return math.ceil(len(indices) / self.config.eval_batch_size)

    def evaluate(self, store, indices, on_batch=None) -> np.ndarray:
        """[sum of per-clip loss, sum of per-clip MPJPE (m), clips] over `indices` of `store`.

        Runs on one device in the cross-replica context: exact for any number of clips. on_batch(i):
        called after batch i (1-based) of `eval_batches(indices)`, for a progress bar.
        """
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
        for i, (x, y) in enumerate(ds, start=1):
            totals += [float(v) for v in self.eval_step(x, y)]
            if on_batch is not None:
                on_batch(i)
        return totals


def train(
    data_dir, run_dir, config: TrainConfig | dict | None = None, resume: bool = False, progress: bool = True,
    keep_checkpoints: bool = True,
) -> dict:
    """Train `config.model` on DATA_DIR's train split, validating on its valid split, into RUN_DIR.

    resume: continue from RUN_DIR's last checkpoint (config None: the saved one; otherwise only
    `epochs` may differ). Returns the history: HISTORY_KEYS -> one value per epoch (loss in the target
    space, MPJPE in mm). Raises ConfigError / DataError for bad settings or data, TrainingError when the
    loss becomes non-finite (the last good checkpoint stays). keep_checkpoints=False deletes a finished
    run's checkpoints (model.keras stays; the run can no longer be extended with `resume`).
    """
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    config = resolve_config(run_dir, config, resume)

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
        check_precision_support(config)
        # Before any TF op: logical CPUs and collectives need a fresh runtime.
        strategy = make_strategy(config)
        chief = is_chief(strategy)
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
            "code": code_digest(),
        }
        started = folder.data_file.is_file() and resume
        if started:
            check_data_matches(run_dir, info)
            transform = load_transform(folder.transform_file)
        else:
            transform = fit_transform(config.transform_kind, train_store.joints[train_idx])
            if chief:
                write_json(folder.config_file, config.to_dict())
                write_json(folder.data_file, info)
                save_transform(folder.transform_file, transform)
                write_mean_pose(folder.mean_pose_file, train_store.joints[train_idx])
        if chief and resume:
            write_json(folder.config_file, config.to_dict())  # epochs may have grown

        trainer = Trainer(config, strategy, frame_size, transform,
                           steps_per_epoch=math.ceil(len(train_idx) / config.batch_size))
        checkpoints = Checkpoints(run_dir, trainer.checkpoint, chief, background=trainer.replicas == 1)
        record = checkpoints.restore() if resume else None
        history = (
            {k: list(v) for k, v in record["history"].items()} if record else {k: [] for k in HISTORY_KEYS}
        )
        start = record["epoch"] if record else 0
        checkpoints.remove_stale(keep=record["prefix"] if record else None)
        if start < config.epochs and chief:
            with contextlib.suppress(FileNotFoundError):
                folder.model_file.unlink()  # stale until this run finishes
        splits = (train_store, train_idx, valid_store, valid_idx)
        history = _fit(trainer, checkpoints, splits, history, start, run_dir, progress)
    if chief and not keep_checkpoints:
        folder.drop_checkpoints()
    return history


def _fit(trainer, checkpoints, splits, history: dict, start: int, run_dir: Path, progress: bool) -> dict:
    """Epochs start+1..config.epochs: train, validate, checkpoint, log. Returns the history."""
    config, chief, folder = trainer.config, checkpoints.chief, RunFolder(run_dir)
    writer = tf.summary.create_file_writer(str(run_dir / TENSORBOARD_DIR)) if chief else None
    steps, val_steps = trainer.steps_per_epoch, trainer.eval_batches(splits[3])
    tracker = ProgressFile(run_dir, config.epochs, enabled=chief)
    # Two bars for the whole run, reset each epoch rather than closed: a closed notebook bar leaves a
    # widget view whose model is gone ("Error displaying widget" once the page reloads).
    # disable only when asked: an explicit disable=False would override TQDM_DISABLE=1.
    # No bars when there is nothing to train (a finished run resumed): unfinished bars show as failures.
    quiet = {} if progress and start < config.epochs else {"disable": True}
    bar, val_bar = tqdm(total=steps, unit="step", **quiet), tqdm(total=val_steps, unit="batch", **quiet)
    epoch_run = EpochRun(trainer, splits, (bar, val_bar), tracker, run_dir)

    def after_epoch(epoch: int, history: dict) -> None:
        log_epoch(trainer, checkpoints, history, epoch_run, epoch, writer, progress)

    with bar, val_bar:
        try:
            run_epochs(epoch_run.train, epoch_run.validate, history, config.epochs, start, after_epoch)
        except BaseException:
            with contextlib.suppress(Exception):  # the last good epoch's checkpoint completes first
                checkpoints.wait()
            raise
        checkpoints.wait()
    tracker.update(config.epochs, "done", 0, 0, force=True)
    if chief:
        write_json(folder.history_file, history)
        if start < config.epochs or not folder.has_model():
            with atomic_path(folder.model_file) as tmp:
                trainer.model.save(tmp)
    return history


def main(args) -> int:
    """`python -m pose_utils train ...`: flags left out keep the defaults (with --resume: the saved run's)."""
    given = given_flags(args)
    run_dir = Path(args.out)
    if args.resume and RunFolder(run_dir).is_run():
        config = RunFolder(run_dir).read_config().replace(**given)
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
