"""The training-only 2-D keypoint head on a CNN model's backbone (`TrainConfig.keypoint_loss`).

The head is a training signal: the step trains the pose model and this head together, and the run
saves the pose model alone (docs/models.md).
"""

from __future__ import annotations

import keras

from pose_utils.errors import ConfigError
from pose_utils.models.layers import ClipZoom, SpatialSoftArgmax, ViewToFrame
from pose_utils.skeleton import NUM_JOINTS

# The backbone block whose maps the keypoint head reads: 14x14 at 224 with input_pool 2, fine enough to
# place a joint within a few pixels and early enough that the 2-D signal shapes most of the backbone
# (measured on the small data: block1 and block3 gained less, docs/models.md).
KEYPOINT_BLOCK = 2


def keypoint_model(model):
    """A training model with a second output: 2-D keypoints read off the backbone (`keypoint_loss`).

    Inputs: a CNN model of `cnn.py` (cnn_frame, cnn_lstm, cnn_tcn). Returns keras.Model(model.input,
    [model.output, keypoints (B, T, 17, 2)]), sharing every layer with `model`, plus a 1x1 convolution
    (17 score maps) on the last conv layer of block KEYPOINT_BLOCK and a `SpatialSoftArgmax`. Train this
    one and save `model`: the head is a training signal only, not part of the pose model. If the model
    zooms its input (`zoom`, `shift` options), the points are moved from the zoomed view back to the
    frame (`ViewToFrame`), so they compare with the frame's labels (`ClipStore.keypoints`) as they are.
    """
    from keras import layers

    prefix = f"block{KEYPOINT_BLOCK}"
    names = [ly.name for ly in model.layers
             if ly.name.endswith("_relu") and ly.name.split("_")[0] == prefix]
    if not names:
        raise ConfigError(
            f"keypoint_loss needs a CNN backbone (cnn_frame, cnn_lstm, cnn_tcn); model {model.name!r} has no "
            f"'{prefix}' block"
        )
    features = model.get_layer(names[-1]).output
    maps = layers.Conv3D(NUM_JOINTS, (1, 1, 1), dtype="float32", name="keypoint_maps")(features)
    points = SpatialSoftArgmax(dtype="float32", name="keypoints_in_view")(maps)
    zoom = next((ly for ly in model.layers if isinstance(ly, ClipZoom)), None)
    if zoom is not None:
        if not zoom.return_params:
            raise ConfigError(f"model {model.name!r} was built before its zoom layer reported its "
                              "parameters; build it anew for keypoint_loss")
        points = ViewToFrame(dtype="float32", name="keypoints")([points, zoom.output[1]])
    return keras.Model(model.input, [model.output, points], name=f"{model.name}_with_keypoints")
