"""pose_utils: 3D human pose estimation from 8-frame clips, after the course report's dynamic regression
model.

Light imports only: TensorFlow loads when a model is built or trained, not on `import pose_utils`.
`runtime.apply()` runs first because TensorFlow reads its CPU settings once, when it is imported.
"""

from pose_utils import runtime

runtime.apply()

from pose_utils.models import available_models, build_model  # noqa: E402
from pose_utils.skeleton import H36M, JOINT_NAMES, LEFT, PARENTS, RIGHT  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "H36M", "JOINT_NAMES", "LEFT", "PARENTS", "RIGHT", "available_models", "build_model", "__version__",
]
