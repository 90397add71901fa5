"""What one clip shows: the subjects and their cameras, the random draws of a clip, its framing and
its background. Pure NumPy; `render` puts it in front of pybullet's camera.

Every random choice of clip i of a split comes from numpy's SeedSequence((seed, split, i)), so the
output is bit-identical for a seed whatever the number of worker processes; the subjects' bodies and
camera rigs do not depend on the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pose_course.datagen import mocap
from pose_utils import camera
from pose_utils.skeleton import NUM_FRAMES

FPS = 25.0  # video frame rate of the clips (Human3.6M's 50 fps, every second frame)
SPEED_RANGE = (0.8, 1.25)  # playback speed relative to the recording
FILL_RANGE = (0.85, 0.95)  # where the joints' box (plus margin) ends, as a fraction of the half-frame
BODY_MARGIN = 0.10  # metres around the joint centres that the body's surface reaches (head, feet, hands)
NOMINAL_HEIGHT = 1.619  # standing height (m) of humanoid.urdf at globalScaling 0.25 (its AABB, rest pose)

SPLITS = ("train", "valid")
SPLIT_IDS = {"train": 0, "valid": 1}
SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "valid": ("S9", "S11")}
# Subjects no student's data has (Human3.6M withheld the same four names for its test set): the hidden
# clips a grader scores trained models on (`make-data --hidden-subjects`), in both splits.
HIDDEN_SUBJECTS = ("S2", "S3", "S4", "S10")
NUM_CAMERAS = 4


# ----------------------------------------------------------------------------- styles of data
@dataclass(frozen=True)
class Style:
    """What kind of scene the clips show (docs/dataset.md, "Styles"): the motions played (None: all 15),
    where each subject's 4 cameras stand (height above the floor and distance from the person, ranges in
    m), whether the bodies carry the front/back cues by default, and whether every clip is filmed in one
    room (`ROOM`: the same floor, walls and lights, like Human3.6M's one lab) or each in its own."""

    motions: tuple[str, ...] | None
    camera_height: tuple[float, float]
    camera_distance: tuple[float, float]
    front_cues: bool
    one_room: bool


# Upright motions, like Human3.6M's everyday actions; the floor work and acrobatics (backflip,
# cartwheel, crawl, roll, the two get-ups) are left to `hard`.
EVERYDAY_MOTIONS = ("dance_a", "dance_b", "jump", "kick", "punch", "run", "spin", "spinkick", "walk")
STYLES = {
    # Human3.6M's four cameras stand 1.46-1.63 m above the floor, 4.1-5.6 m from the room's centre
    # (the calibrations of S1, S5-S9, S11).
    "everyday": Style(EVERYDAY_MOTIONS, (1.45, 1.65), (4.1, 5.6), front_cues=True, one_room=True),
    # The data of the first releases: every motion, cameras from knee to above head height, a new
    # floor, sky and light in every clip.
    "hard": Style(None, (0.9, 2.1), (3.5, 6.0), front_cues=False, one_room=False),
}
# The one room of the everyday style: light from above and behind the cameras of one side, a pale tiled
# floor and grey walls (drawn as the "sky" gradient), the same for every clip, camera and subject.
ROOM = dict(light_direction=(0.35, 0.87, 0.35), light_color=(1.0, 0.97, 0.92), light_coeffs=(0.6, 0.45, 0.1),
            sky=((0.55, 0.57, 0.60), (0.68, 0.69, 0.70)), floor=((0.62, 0.58, 0.52), (0.53, 0.50, 0.45)),
            tile=0.6)
DEFAULT_STYLE = "everyday"


def style_motions(style: str, motions: dict[str, mocap.Motion]) -> list[str]:
    """The names of the motions clips of `style` play, in the order clip i takes them (i mod count)."""
    chosen = STYLES[style].motions
    names = [n for n in motions if chosen is None or n in chosen]
    if not names:
        raise ValueError(f"none of the motions of style {style!r} were loaded")
    return names


# ----------------------------------------------------------------------------- subjects and cameras
@dataclass(frozen=True)
class Subject:
    """A person: standing height (m), RGB colours in [0, 1], sleeve length. Their 4 camera rigs depend on
    the style: `camera_rig`."""

    name: str
    height: float
    skin: tuple[float, float, float]
    shirt: tuple[float, float, float]
    trousers: tuple[float, float, float]
    shoes: tuple[float, float, float]
    long_sleeves: bool

    @property
    def scale(self) -> float:
        """Body scale relative to humanoid.urdf at globalScaling 0.25."""
        return self.height / NOMINAL_HEIGHT


def _rigs(number: int, style: str = "hard") -> tuple[tuple[float, float, float], ...]:
    # Fixed per subject (independent of --seed), like Human3.6M's calibrated cameras: one near each
    # corner of the room, at the style's heights and distances (the same draws for every style).
    rng = np.random.default_rng(1000 + number)
    (h0, h1), (d0, d1) = STYLES[style].camera_height, STYLES[style].camera_distance
    rigs = []
    for c in range(NUM_CAMERAS):
        azimuth, u, w = 45 + 90 * c + rng.uniform(-20, 20), rng.uniform(), rng.uniform()
        rigs.append((float(azimuth), float(h0 + (h1 - h0) * u), float(d0 + (d1 - d0) * w)))
    return tuple(rigs)


def camera_rig(subject: str, camera: int, style: str) -> tuple[float, float, float]:
    """(azimuth in degrees, height in m, distance in m) of a subject's camera in a style."""
    return _RIGS[style][subject][camera]


_SUBJECT_TABLE = {  # height, skin, shirt, trousers, shoes, long sleeves
    "S1": (1.62, (0.87, 0.72, 0.60), (0.80, 0.20, 0.25), (0.20, 0.22, 0.35), (0.15, 0.15, 0.15), False),
    "S5": (1.58, (0.62, 0.45, 0.34), (0.95, 0.85, 0.35), (0.35, 0.35, 0.38), (0.90, 0.90, 0.90), True),
    "S6": (1.84, (0.93, 0.80, 0.70), (0.25, 0.45, 0.75), (0.55, 0.45, 0.30), (0.30, 0.20, 0.12), False),
    "S7": (1.66, (0.45, 0.31, 0.22), (0.30, 0.65, 0.40), (0.12, 0.12, 0.14), (0.75, 0.20, 0.20), True),
    "S8": (1.76, (0.80, 0.62, 0.48), (0.92, 0.92, 0.90), (0.25, 0.30, 0.55), (0.10, 0.10, 0.10), False),
    "S9": (1.80, (0.70, 0.52, 0.40), (0.55, 0.30, 0.60), (0.40, 0.40, 0.30), (0.50, 0.35, 0.20), True),
    "S11": (1.72, (0.90, 0.76, 0.66), (0.95, 0.55, 0.20), (0.18, 0.28, 0.25), (0.85, 0.85, 0.80), False),
    "S2": (1.68, (0.78, 0.60, 0.46), (0.20, 0.55, 0.55), (0.30, 0.25, 0.20), (0.60, 0.60, 0.62), True),
    "S3": (1.88, (0.55, 0.38, 0.28), (0.85, 0.40, 0.55), (0.22, 0.24, 0.28), (0.20, 0.12, 0.08), False),
    "S4": (1.60, (0.92, 0.78, 0.68), (0.45, 0.60, 0.25), (0.50, 0.50, 0.55), (0.80, 0.75, 0.70), False),
    "S10": (1.75, (0.66, 0.48, 0.36), (0.30, 0.30, 0.32), (0.60, 0.45, 0.25), (0.12, 0.12, 0.35), True),
}
SUBJECT_INFO: dict[str, Subject] = {
    name: Subject(name, *row) for name, row in _SUBJECT_TABLE.items()
}
_RIGS = {style: {name: _rigs(int(name[1:]), style) for name in _SUBJECT_TABLE} for style in STYLES}


# ----------------------------------------------------------------------------- clip specifications
@dataclass(frozen=True)
class ClipSpec:
    """Everything random about one clip, drawn from SeedSequence((seed, split id, index))."""

    split: str
    index: int
    subject: str
    action: str
    camera: int
    rig: tuple[float, float, float]  # the camera's azimuth (degrees), height and distance (m)
    start_time: float
    speed: float
    yaw: float  # radians about the vertical
    mirrored: bool
    fill: float
    aim: tuple[float, float]  # offset of the person from the frame centre, fraction of the half-frame
    light_direction: tuple[float, float, float]
    light_color: tuple[float, float, float]
    light_coeffs: tuple[float, float, float]  # ambient, diffuse, specular
    sky: tuple[tuple[float, float, float], tuple[float, float, float]]  # top, horizon
    floor: tuple[tuple[float, float, float], tuple[float, float, float]]  # two tile colours
    tile: float  # floor tile size, m


def _design(seed: int, split: str, action_index: int, hidden: bool = False) -> list[tuple[str, int]]:
    """(subject, camera) pairs in the order clips of one action take them: every pair once per round."""
    pairs = [(s, c) for s in (HIDDEN_SUBJECTS if hidden else SUBJECTS[split]) for c in range(NUM_CAMERAS)]
    order = np.random.default_rng([seed, SPLIT_IDS[split], 1 << 20, action_index]).permutation(len(pairs))
    return [pairs[i] for i in order]


def _color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> tuple:
    import colorsys

    return tuple(float(c) for c in colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*sat), rng.uniform(*val)))


def clip_spec(seed: int, split: str, index: int, motions: dict[str, mocap.Motion],
              mirrored: bool | None = None, hidden: bool = False, style: str = DEFAULT_STYLE) -> ClipSpec:
    """The specification of clip `index` of `split`. Clip i plays motion i mod (the style's motion
    count), so every motion is in both splits; `mirrored` forces the mirroring choice (tests), None draws
    it; `hidden`: played by HIDDEN_SUBJECTS instead of the split's subjects."""
    if split not in SPLIT_IDS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {sorted(STYLES)}, got {style!r}")
    names = style_motions(style, motions)
    action = names[index % len(names)]
    design = _design(seed, split, index % len(names), hidden)
    subject, cam = design[(index // len(names)) % len(design)]
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    speed = float(rng.uniform(*SPEED_RANGE))
    lo, hi = motions[action].start_range(speed * (NUM_FRAMES - 1) / FPS)
    start = float(rng.uniform(lo, hi))
    yaw = float(rng.uniform(0, 2 * math.pi))
    flip = bool(rng.random() < 0.5)
    fill = float(rng.uniform(*FILL_RANGE))
    aim = tuple(float(v) for v in rng.uniform(-0.05, 0.05, 2))
    az, el = rng.uniform(0, 2 * math.pi), rng.uniform(math.radians(25), math.radians(80))
    light_dir = (math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az))
    light_color = tuple(float(v) for v in 1.0 - rng.uniform(0, 0.15, 3))
    coeffs = (float(rng.uniform(0.45, 0.7)), float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.0, 0.2)))
    sky_top = _color(rng, (0.0, 0.35), (0.35, 0.95))
    horizon = tuple(float(min(1.0, c * rng.uniform(1.0, 1.25))) for c in sky_top)
    floor_a = _color(rng, (0.05, 0.5), (0.3, 0.85))
    floor_b = tuple(float(c * rng.uniform(0.75, 0.92)) for c in floor_a)
    tile = float(rng.uniform(0.4, 1.2))
    scene = dict(light_direction=light_dir, light_color=light_color, light_coeffs=coeffs,
                 sky=(sky_top, horizon), floor=(floor_a, floor_b), tile=tile)
    if STYLES[style].one_room:  # drawn all the same, so the other draws stay those of the hard style
        scene = ROOM
    return ClipSpec(split, index, subject, action, cam, camera_rig(subject, cam, style), start, speed, yaw,
                    flip if mirrored is None else bool(mirrored), fill, aim, **scene)


# ----------------------------------------------------------------------------- framing and background
def principal_point(size: int) -> tuple[float, float]:
    """(cx, cy) of every clip: the frame's centre, in our pixel convention (centre of pixel (0, 0) at
    (0, 0)). A left-right flip of the frame is then exactly x -> -x in camera coordinates."""
    return (size - 1) / 2.0, (size - 1) / 2.0


def frame_camera(world: np.ndarray, subject: Subject, spec: ClipSpec, size: int):
    """Place the clip's camera like a Human3.6M-style person crop: the subject's rig `spec.camera`
    stands around the clip's mean pelvis position and turns so the joints' image bounding box (plus
    a margin for the body's surface) is centred, offset by `spec.aim`; the focal length makes that box
    span `spec.fill` of the frame along its longer side. Inputs: world (8, 17, 3) metres.
    Returns R (3, 3), t (3,), K (3, 3)."""
    azimuth, height, distance = spec.rig
    centre = world[:, 0].mean(axis=0)
    a = math.radians(azimuth)
    eye = np.array([centre[0] + distance * math.sin(a), height, centre[2] + distance * math.cos(a)])
    points = world.reshape(-1, 3)
    margin = BODY_MARGIN * subject.scale
    R, t = camera.look_at(eye, (points.min(axis=0) + points.max(axis=0)) / 2)

    def box(R, t):  # (centre (2,), half size) of the joints' box in normalised image coordinates
        X = camera.world_to_camera(points, R, t)
        xy, pad = X[:, :2] / X[:, 2:3], margin / X[:, 2:3]
        lo, hi = (xy - pad).min(axis=0), (xy + pad).max(axis=0)
        return (lo + hi) / 2, float(np.max(hi - lo) / 2)

    for _ in range(2):  # turn towards the box centre (twice: turning changes the perspective a little)
        mid, half = box(R, t)
        mid = mid - np.asarray(spec.aim) * half / spec.fill  # the person sits `aim` off the centre
        R, t = camera.look_at(eye, eye + R.T @ np.array([mid[0], mid[1], 1.0]))
    mid, half = box(R, t)
    # The focal length puts the box edge farthest from the optical axis (half + |mid|) at `spec.fill` of
    # the half-frame. It is written half / fill * fill, not half, because the data's bits depend on that
    # rounding (same seed, same files).
    f = spec.fill * (size / 2.0) / (half / spec.fill * spec.fill + float(np.max(np.abs(mid))))
    return R, t, camera.intrinsics(f, *principal_point(size))


def background(R, t, K, size: int, spec: ClipSpec, pelvis: np.ndarray) -> np.ndarray:
    """The scene behind the person, (S, S, 3) uint8: a tiled floor at y = 0 fading into a sky gradient
    at the horizon, found by intersecting each pixel's ray with the floor plane. Computed here once per
    clip, because a floor drawn by pybullet would cost far more in every frame (docs/dataset.md,
    "Measured"). A soft shadow darkens the floor around the clip's mean pelvis position (pelvis: (8, 3)
    world metres)."""
    R, K = np.asarray(R, np.float32), np.asarray(K, np.float64)
    a = ((np.arange(size) - K[0, 2]) / K[0, 0]).astype(np.float32)[None, :]  # normalised x per column
    b = ((np.arange(size) - K[1, 2]) / K[1, 1]).astype(np.float32)[:, None]  # normalised y per row
    rx, ry, rz = (a * R[0, k] + b * R[1, k] + R[2, k] for k in range(3))  # world ray of each pixel
    eye = camera.camera_center(R, t).astype(np.float32)
    length = np.sqrt(rx * rx + ry * ry + rz * rz)
    down = ry < -1e-6
    s = eye[1] / -np.where(down, ry, np.float32(-1.0))  # distance along the ray to the floor
    hx, hz = eye[0] + s * rx, eye[2] + s * rz
    inv = np.float32(1.0 / spec.tile)
    tile = ((np.floor(hx * inv) + np.floor(hz * inv)).astype(np.int32) & 1).astype(np.float32)
    cx, cz = np.float32(pelvis[:, 0].mean()), np.float32(pelvis[:, 2].mean())
    shade = 1 - np.float32(0.35) * np.exp(((hx - cx) ** 2 + (hz - cz) ** 2) * np.float32(-1 / (2 * 0.3**2)))
    fade = np.clip((s * length - np.float32(8.0)) * np.float32(1 / 12.0), 0, 1)  # far floor -> horizon
    lit = shade * (1 - fade)
    up = np.sqrt(np.clip(ry / length, 0, 1))  # sky: horizon colour at the horizon, top colour overhead
    image = np.empty((size, size, 3), np.uint8)
    for c in range(3):
        fa, fb = spec.floor[0][c], spec.floor[1][c]
        top, horizon = spec.sky[0][c], spec.sky[1][c]
        floor = (fa + (fb - fa) * tile) * lit + horizon * fade
        sky = horizon + (top - horizon) * up
        image[..., c] = np.where(down, floor, sky) * 255 + 0.5
    return image
