"""Where a step runs: tf.distribute strategies (one device, mirrored replicas, multi-worker) and the
Keras dtype policies (float32, mixed_bfloat16, mixed_float16).

Distribution uses TensorFlow's strategies with the same loop: "default" (one device, a GPU if present),
"mirrored" (all local GPUs, or `cpu_replicas` logical CPUs), "multiworker" (`TF_CONFIG`). The strategy
must be made before any other TensorFlow work: logical CPUs and collectives need a fresh runtime.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

from pose_utils.errors import ConfigError


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


def make_strategy(config):
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


def is_chief(strategy) -> bool:
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

    if name == "mixed_bfloat16" and not has_native_bf16():
        warnings.warn(
            "mixed_bfloat16 without a GPU or AVX512_BF16/AMX CPU is usually slower than float32", stacklevel=3
        )
    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(old)


def check_precision_support(config) -> None:
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


def has_native_bf16() -> bool:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return True
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return True  # unknown platform: do not warn
