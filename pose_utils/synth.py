"""The embedded dataset: real motion capture rendered into Human3.6M-style 8-frame clips (`make-data`).

Each clip: a subject (body scale and colours) plays one of pybullet's 15 DeepMimic motion-capture clips
(`pose_utils.mocap`) from a random start time at a random playback speed, turned by a random yaw,
seen by one of the subject's 4 cameras, rendered by pybullet's CPU renderer (ER_TINY_RENDERER) and
sometimes mirrored left/right. Labels are the 17 Human3.6M joints read from the posed body (pybullet
does the forward kinematics), in camera coordinates (metres, x right, y down, z forward), pelvis at
the origin; the absolute pelvis position and the intrinsics are stored so labels project onto pixels.
docs/dataset.md describes the data; pose_utils/data.py reads it.

Every random choice of clip i of a split comes from numpy's SeedSequence((seed, split, i)), so the
output is bit-identical for a seed whatever the number of worker processes.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import shutil
import sys
import zlib
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import camera, mocap
from .errors import ConfigError, PoseUtilsError
from .fileio import atomic_path
from .skeleton import JOINT_NAMES, NUM_FRAMES, NUM_JOINTS, flip_left_right

GENERATOR_VERSION = "1.0"
FPS = 25.0  # video frame rate of the clips (Human3.6M's 50 fps, every second frame)
SPEED_RANGE = (0.8, 1.25)  # playback speed relative to the recording
FILL_RANGE = (0.85, 0.95)  # where the joints' box (plus margin) ends, as a fraction of the half-frame
BODY_MARGIN = 0.10  # metres around the joint centres that the body's surface reaches (head, feet, hands)
NOMINAL_HEIGHT = 1.619  # standing height (m) of humanoid.urdf at globalScaling 0.25 (its AABB, rest pose)
BASE_SCALING = 0.25
PARK = (0.0, -1000.0, 0.0)  # where unused bodies wait: far outside every camera's view
FRAMES_COMPRESSION = "lzf"  # measured: 7x smaller frames at 224, cheap to read (docs/dataset.md)

SPLITS = ("train", "valid")
SPLIT_IDS = {"train": 0, "valid": 1}
SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "valid": ("S9", "S11")}
NUM_CAMERAS = 4


@dataclass(frozen=True)
class Preset:
    frame_size: int
    train_clips: int
    valid_clips: int


PRESETS = {
    "tiny": Preset(64, 32, 16),  # tests: seconds
    "small": Preset(224, 480, 160),  # the demo
    "course": Preset(224, 5964, 1368),  # the course dataset's clip counts
}


# ----------------------------------------------------------------------------- subjects and cameras
@dataclass(frozen=True)
class Subject:
    """A person: standing height (m), RGB colours in [0, 1], sleeve length, and 4 camera rigs
    (azimuth in degrees around the person, camera height above the floor in m, distance in m)."""

    name: str
    height: float
    skin: tuple[float, float, float]
    shirt: tuple[float, float, float]
    trousers: tuple[float, float, float]
    shoes: tuple[float, float, float]
    long_sleeves: bool
    cameras: tuple[tuple[float, float, float], ...]

    @property
    def scale(self) -> float:
        """Body scale relative to humanoid.urdf at globalScaling 0.25."""
        return self.height / NOMINAL_HEIGHT


def _rigs(number: int) -> tuple[tuple[float, float, float], ...]:
    # Fixed per subject (independent of --seed), like Human3.6M's calibrated cameras: one near each
    # corner of the room, at differing heights and distances.
    rng = np.random.default_rng(1000 + number)
    return tuple((float(45 + 90 * c + rng.uniform(-20, 20)), float(rng.uniform(0.9, 2.1)),
                  float(rng.uniform(3.5, 6.0))) for c in range(NUM_CAMERAS))


_SUBJECT_TABLE = {  # height, skin, shirt, trousers, shoes, long sleeves
    "S1": (1.62, (0.87, 0.72, 0.60), (0.80, 0.20, 0.25), (0.20, 0.22, 0.35), (0.15, 0.15, 0.15), False),
    "S5": (1.58, (0.62, 0.45, 0.34), (0.95, 0.85, 0.35), (0.35, 0.35, 0.38), (0.90, 0.90, 0.90), True),
    "S6": (1.84, (0.93, 0.80, 0.70), (0.25, 0.45, 0.75), (0.55, 0.45, 0.30), (0.30, 0.20, 0.12), False),
    "S7": (1.66, (0.45, 0.31, 0.22), (0.30, 0.65, 0.40), (0.12, 0.12, 0.14), (0.75, 0.20, 0.20), True),
    "S8": (1.76, (0.80, 0.62, 0.48), (0.92, 0.92, 0.90), (0.25, 0.30, 0.55), (0.10, 0.10, 0.10), False),
    "S9": (1.80, (0.70, 0.52, 0.40), (0.55, 0.30, 0.60), (0.40, 0.40, 0.30), (0.50, 0.35, 0.20), True),
    "S11": (1.72, (0.90, 0.76, 0.66), (0.95, 0.55, 0.20), (0.18, 0.28, 0.25), (0.85, 0.85, 0.80), False),
}
SUBJECT_INFO: dict[str, Subject] = {
    name: Subject(name, *row, cameras=_rigs(int(name[1:]))) for name, row in _SUBJECT_TABLE.items()
}


# ----------------------------------------------------------------------------- clip specifications
@dataclass(frozen=True)
class ClipSpec:
    """Everything random about one clip, drawn from SeedSequence((seed, split id, index))."""

    split: str
    index: int
    subject: str
    action: str
    camera: int
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


def _design(seed: int, split: str, action_index: int) -> list[tuple[str, int]]:
    """(subject, camera) pairs in the order clips of one action take them: every pair once per round."""
    pairs = [(s, c) for s in SUBJECTS[split] for c in range(NUM_CAMERAS)]
    order = np.random.default_rng([seed, SPLIT_IDS[split], 1 << 20, action_index]).permutation(len(pairs))
    return [pairs[i] for i in order]


def _color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> tuple:
    import colorsys

    return tuple(float(c) for c in colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*sat), rng.uniform(*val)))


def clip_spec(seed: int, split: str, index: int, motions: dict[str, mocap.Motion],
              mirrored: bool | None = None) -> ClipSpec:
    """The specification of clip `index` of `split`. Clip i plays motion i mod 15, so every motion is
    in both splits; `mirrored` forces the mirroring choice (tests), None draws it."""
    if split not in SPLIT_IDS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    names = list(motions)
    action = names[index % len(names)]
    design = _design(seed, split, index % len(names))
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
    return ClipSpec(split, index, subject, action, cam, start, speed, yaw,
                    flip if mirrored is None else bool(mirrored), fill, aim, light_dir, light_color,
                    coeffs, (sky_top, horizon), (floor_a, floor_b), tile)


# ----------------------------------------------------------------------------- rendering
# Human3.6M joint -> link of humanoid.urdf (URDF_MAINTAIN_LINK_ORDER) whose frame origin it is; -1 is
# the base (the pelvis). Spine is the chest joint, Thorax the neck joint; Neck/Nose and Head are fixed
# points of the head link (HEAD_POINTS, in URDF units, scaled with the body).
JOINT_LINKS = (-1, 3, 4, 5, 9, 10, 11, 1, 2, None, None, 12, 13, 14, 6, 7, 8)
HEAD_LINK = 2
HEAD_POINTS = {9: (0.34, 0.62, 0.0), 10: (0.0, 1.0, 0.0)}  # nose: front of the head; head: its crown
LINK_PARTS = {0: "trousers", 1: "shirt", 2: "skin", 3: "trousers", 4: "trousers", 5: "shoes",
              6: "shirt", 7: "forearm", 8: "skin", 9: "trousers", 10: "trousers", 11: "shoes",
              12: "shirt", 13: "forearm", 14: "skin"}
BODY_LINKS = tuple(range(15))
CHEST_LINK = 1

# Front/back cues (`make-data --front-cues`): the humanoid's head is a plain sphere and its clothes are one
# colour per part, so from many viewpoints its front and back look alike and a model confuses them
# (docs/models.md). These visual-only spheres ride on a link, centres in the link's frame in URDF units
# (+x is the body's front): hair over the back and top of the head (the head: radius 0.41 at
# (0, 0.70, 0)), a nose, and a print on the shirt's front (the chest: radius 0.44 at (0, 0.48, 0)).
FRONT_CUES = (  # (link, centre, radius, what)
    (HEAD_LINK, (-0.10, 0.76, 0.0), 0.42, "hair"),
    (HEAD_LINK, (0.40, 0.64, 0.0), 0.10, "nose"),
    (CHEST_LINK, (0.24, 0.55, 0.0), 0.25, "print"),
)
CUE_LINKS = sorted({link for link, *_ in FRONT_CUES})
HAIR_COLORS = ((0.08, 0.06, 0.05), (0.25, 0.15, 0.08), (0.55, 0.40, 0.20), (0.85, 0.75, 0.45),
               (0.45, 0.18, 0.08))


def cue_colors(subject: str) -> dict[str, tuple[float, float, float]]:
    """The colours of a subject's front cues: hair from a fixed palette (by name, so no random draw of
    the default data changes), a nose a shade darker than the skin, a print opposite to the shirt."""
    info = SUBJECT_INFO[subject]
    return {"hair": HAIR_COLORS[zlib.crc32(subject.encode()) % len(HAIR_COLORS)],
            "nose": tuple(0.8 * c for c in info.skin), "print": tuple(1.0 - c for c in info.shirt)}


@dataclass
class Clip:
    """A rendered clip. frames (8, S, S, 3) uint8; joints (8, 17, 3) metres, camera frame, root-relative;
    root (8, 3) metres; K (3, 3) pixels; mask (8, S, S) int32 link index + 1 of the body (0 elsewhere),
    only when asked for; spec: the ClipSpec."""

    spec: ClipSpec
    frames: np.ndarray
    joints: np.ndarray
    root: np.ndarray
    K: np.ndarray
    mask: np.ndarray | None = None


def principal_point(size: int) -> tuple[float, float]:
    """(cx, cy) of every clip: the frame's centre, in our pixel convention (centre of pixel (0, 0) at
    (0, 0)). A left-right flip of the frame is then exactly x -> -x in camera coordinates."""
    return (size - 1) / 2.0, (size - 1) / 2.0


def gl_projection(K: np.ndarray, size: int, near: float = 0.05, far: float = 100.0) -> list[float]:
    """OpenGL projection matrix (16 floats, column-major, pybullet's format) under which pybullet's
    ER_TINY_RENDERER draws a size x size frame exactly as the pinhole intrinsics K project.

    computeProjectionMatrixFOV alone puts the principal point at (size/2, size/2 - 1) (measured:
    tests/test_synth.py renders a square and compares its centroid with camera.project); the two
    off-centre terms move it to K's (cx, cy)."""
    f, cx, cy = float(K[0, 0]), float(K[0, 2]), float(K[1, 2])
    if abs(K[1, 1] - f) > 1e-9 * f:
        raise ValueError("the renderer needs square pixels (K[0, 0] == K[1, 1])")
    m = np.zeros(16)
    m[0] = m[5] = 2.0 * f / size
    m[8] = -2.0 * (cx - size / 2.0) / size
    m[9] = 2.0 * (cy - (size / 2.0 - 1.0)) / size
    m[10] = -(far + near) / (far - near)
    m[11] = -1.0
    m[14] = -2.0 * far * near / (far - near)
    return m.tolist()


class Renderer:
    """One pybullet DIRECT client that renders clips; one per worker process. Bodies (one per subject,
    scaled and coloured) are loaded on first use and parked far away while unused. `front_cues`: each
    body also gets the FRONT_CUES spheres (separate visual-only bodies that follow their links)."""

    def __init__(self, frame_size: int, motions: dict[str, mocap.Motion] | None = None,
                 front_cues: bool = False):
        with _quiet_c_output():
            import pybullet
            import pybullet_data

        self.p = pybullet
        self.size = int(frame_size)
        self.motions = motions if motions is not None else mocap.load_motions()
        self.client = pybullet.connect(pybullet.DIRECT)
        pybullet.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        self.bodies: dict[str, int] = {}
        self.active: str | None = None
        self.front_cues = bool(front_cues)
        self.cues: dict[str, list[tuple[int, int, np.ndarray]]] = {}  # subject -> (body id, link, centre m)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.p.disconnect(self.client)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def body(self, subject: str) -> int:
        """The subject's body id, loaded and coloured on first use, moved into the scene if parked."""
        p, cid = self.p, self.client
        if subject not in self.bodies:
            info = SUBJECT_INFO[subject]
            with _quiet_c_output():  # the URDF importer prints a warning per joint without an axis
                uid = p.loadURDF("humanoid/humanoid.urdf", PARK, globalScaling=BASE_SCALING * info.scale,
                                 useFixedBase=True, flags=p.URDF_MAINTAIN_LINK_ORDER, physicsClientId=cid)
            colors = {"skin": info.skin, "shirt": info.shirt, "trousers": info.trousers, "shoes": info.shoes,
                      "forearm": info.shirt if info.long_sleeves else info.skin}
            for link, part in LINK_PARTS.items():
                p.changeVisualShape(uid, link, rgbaColor=[*colors[part], 1.0], physicsClientId=cid)
            self.bodies[subject] = uid
            if self.front_cues:
                self.cues[subject] = self._add_cues(subject, BASE_SCALING * info.scale)
        if self.active != subject:
            if self.active is not None:
                for parked in (self.bodies[self.active], *(c[0] for c in self.cues.get(self.active, ()))):
                    p.resetBasePositionAndOrientation(parked, PARK, (0, 0, 0, 1), physicsClientId=cid)
            self.active = subject
        return self.bodies[subject]

    def _add_cues(self, subject: str, scale: float) -> list[tuple[int, int, np.ndarray]]:
        """Create the subject's FRONT_CUES spheres, parked; returns (body id, link, centre in metres)."""
        p, cid = self.p, self.client
        colors, cues = cue_colors(subject), []
        for link, centre, radius, what in FRONT_CUES:
            shape = p.createVisualShape(p.GEOM_SPHERE, radius=radius * scale, rgbaColor=[*colors[what], 1.0],
                                        physicsClientId=cid)
            uid = p.createMultiBody(baseMass=0, baseVisualShapeIndex=shape, basePosition=PARK,
                                    physicsClientId=cid)
            cues.append((uid, link, np.asarray(centre) * scale))
        return cues

    def pose(self, body: int, pose: mocap.Pose) -> None:
        """Put the body in `pose` (no simulation: positions are set directly)."""
        p = self.p
        p.resetBasePositionAndOrientation(body, pose.root_position.tolist(), pose.root_rotation.tolist(),
                                          physicsClientId=self.client)
        p.resetJointStatesMultiDof(body, *pose.joint_targets(), physicsClientId=self.client)
        cues = self.cues.get(self.active, ())
        if cues:
            states = dict(zip(CUE_LINKS, p.getLinkStates(body, CUE_LINKS, computeForwardKinematics=True,
                                                         physicsClientId=self.client), strict=True))
            for uid, link, centre in cues:
                p.resetBasePositionAndOrientation(uid, self._on_link(states[link], centre).tolist(),
                                                  (0, 0, 0, 1), physicsClientId=self.client)

    def joints_world(self, body: int, scale: float) -> np.ndarray:
        """The 17 Human3.6M joints of the posed body, (17, 3) world metres."""
        p = self.p
        states = p.getLinkStates(body, list(BODY_LINKS), computeForwardKinematics=True,
                                 physicsClientId=self.client)
        out = np.empty((NUM_JOINTS, 3))
        out[0] = p.getBasePositionAndOrientation(body, physicsClientId=self.client)[0]
        for j, link in enumerate(JOINT_LINKS):
            if link is not None and link >= 0:
                out[j] = states[link][4]  # link frame origin = joint centre ([0] is the centre of mass)
        for j, local in HEAD_POINTS.items():
            out[j] = self._on_link(states[HEAD_LINK], np.asarray(local) * BASE_SCALING * scale)
        return out

    def _on_link(self, state, local: np.ndarray) -> np.ndarray:
        """World position of a point fixed in a link's frame: state from getLinkState(s), local in metres."""
        rot = np.reshape(self.p.getMatrixFromQuaternion(state[5]), (3, 3))
        return np.asarray(state[4]) + rot @ local

    def render_clip(self, spec: ClipSpec, with_mask: bool = False) -> Clip:
        """Pose, frame, render and label one clip; `with_mask` also returns the body's link mask."""
        p, cid, S = self.p, self.client, self.size
        info = SUBJECT_INFO[spec.subject]
        body = self.body(spec.subject)
        poses = self.motions[spec.action].sample(spec.start_time, NUM_FRAMES, FPS, spec.speed)
        poses = [q.transformed(yaw=spec.yaw, scale=info.scale) for q in poses]
        world = np.empty((NUM_FRAMES, NUM_JOINTS, 3))
        for i, q in enumerate(poses):
            self.pose(body, q)
            world[i] = self.joints_world(body, info.scale)
        R, t, K = frame_camera(world, info, spec, S)
        view = camera.gl_view_matrix(R, t)
        proj = gl_projection(K, S)
        backdrop = background(R, t, K, S, spec, world[:, 0])
        frames = np.empty((NUM_FRAMES, S, S, 3), np.uint8)
        mask = np.zeros((NUM_FRAMES, S, S), np.int32) if with_mask else None
        columns = slice(None, None, -1) if spec.mirrored else slice(None)
        for i, q in enumerate(poses):
            self.pose(body, q)
            _, _, rgba, _, seg = p.getCameraImage(S, S, view, proj, **camera_image_kwargs(p, spec),
                                                  physicsClientId=cid)
            rgba, seg = np.reshape(rgba, (S, S, 4)), np.reshape(seg, (S, S))
            on_body = seg >= 0  # the active body is the only thing in view (no floor, others parked)
            # a mirrored clip is written flipped left-right, labels mirrored below to match
            frame = frames[i]
            frame[:] = backdrop[:, columns]
            np.copyto(frame, rgba[:, columns, :3], where=on_body[:, columns, None])
            if mask is not None:  # link index + 1 of the body under each pixel, 0 off the body
                links = seg >> 24
                for uid, link, _ in self.cues.get(spec.subject, ()):  # a cue counts as its link
                    links[seg == uid] = link + 1
                mask[i] = np.where(on_body, links, 0)[:, columns]
        cam = camera.world_to_camera(world, R, t)
        if spec.mirrored:
            cam = flip_left_right(cam, axis=0)
            K = K.copy()
            K[0, 2] = (S - 1) - K[0, 2]  # column u lands on S - 1 - u (the centre stays the centre)
        root = cam[:, 0].copy()
        joints = cam - root[:, None]
        return Clip(spec, frames, joints.astype(np.float32), root.astype(np.float32), K.astype(np.float32),
                    mask)


def camera_image_kwargs(p, spec: ClipSpec) -> dict:
    """getCameraImage arguments besides size and matrices: the CPU renderer, the clip's lighting (no
    shadows: they triple the time), and a segmentation buffer that also holds link indices."""
    return dict(renderer=p.ER_TINY_RENDERER, shadow=0, lightDirection=list(spec.light_direction),
                lightColor=list(spec.light_color), lightAmbientCoeff=spec.light_coeffs[0],
                lightDiffuseCoeff=spec.light_coeffs[1], lightSpecularCoeff=spec.light_coeffs[2],
                flags=p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX)


def frame_camera(world: np.ndarray, subject: Subject, spec: ClipSpec, size: int):
    """Place the clip's camera like a Human3.6M-style person crop: the subject's rig `spec.camera`
    stands around the clip's mean pelvis position and turns so the joints' image bounding box (plus
    a margin for the body's surface) is centred, offset by `spec.aim`; the focal length makes that box
    span `spec.fill` of the frame along its longer side. Inputs: world (8, 17, 3) metres.
    Returns R (3, 3), t (3,), K (3, 3)."""
    azimuth, height, distance = subject.cameras[spec.camera]
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
    reach = half + float(np.max(np.abs(mid)))  # farthest box edge from the optical axis
    f = spec.fill * (size / 2.0) / (half / spec.fill * spec.fill + float(np.max(np.abs(mid))))
    del reach
    return R, t, camera.intrinsics(f, *principal_point(size))


def background(R, t, K, size: int, spec: ClipSpec, pelvis: np.ndarray) -> np.ndarray:
    """The scene behind the person, (S, S, 3) uint8: a tiled floor at y = 0 fading into a sky gradient
    at the horizon, found by intersecting each pixel's ray with the floor plane. pybullet would take
    ~4 ms a frame to draw a floor; this takes ~1 ms once per clip. A soft shadow darkens the floor
    around the clip's mean pelvis position (pelvis: (8, 3) world metres)."""
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


@contextlib.contextmanager
def _quiet_c_output(streams=(sys.stdout, sys.stderr)):
    """Silence what C code writes to these streams' descriptors inside the block (pybullet prints its
    build time to stderr on import and URDF warnings to stdout)."""
    saved = []
    try:
        for stream in streams:
            try:
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):  # e.g. replaced by pytest or Jupyter
                continue
            stream.flush()
            saved.append((fd, os.dup(fd)))
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)
        yield
    finally:
        _flush_c_stdio()  # C's stdout buffer would otherwise print later, to the restored descriptor
        for fd, copy in reversed(saved):
            os.dup2(copy, fd)
            os.close(copy)


def _flush_c_stdio() -> None:
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).fflush(None)


def render_clips(seed: int, split: str, indices, frame_size: int, with_mask: bool = False,
                 mirrored: bool | None = None, front_cues: bool = False) -> list[Clip]:
    """Render clips in this process (tests, notebooks): the same clips make-data writes for that seed."""
    motions = mocap.load_motions()
    with Renderer(frame_size, motions, front_cues) as renderer:
        return [renderer.render_clip(clip_spec(seed, split, int(i), motions, mirrored), with_mask)
                for i in indices]


# ----------------------------------------------------------------------------- worker processes
_WORKER: dict = {}


def _worker_init(frame_size: int, front_cues: bool) -> None:
    _WORKER["renderer"] = Renderer(frame_size, front_cues=front_cues)


def _worker_render(task: tuple[int, str, int, int]) -> dict:
    return _render_task(_WORKER["renderer"], task)


def _render_task(renderer: Renderer, task: tuple[int, str, int, int]) -> dict:
    """Render clips [lo, hi) of a split; returns stacked arrays (what the writers store)."""
    seed, split, lo, hi = task
    clips = [renderer.render_clip(clip_spec(seed, split, i, renderer.motions)) for i in range(lo, hi)]
    return _stack(split, lo, clips)


def _stack(split: str, lo: int, clips: list[Clip]) -> dict:
    return {
        "split": split, "lo": lo,
        "frames": np.stack([c.frames for c in clips]),
        "joints": np.stack([c.joints for c in clips]),
        "root": np.stack([c.root for c in clips]),
        "intrinsics": np.stack([c.K for c in clips]),
        "subject": [c.spec.subject for c in clips],
        "action": [c.spec.action for c in clips],
        "camera": np.array([c.spec.camera for c in clips], np.int16),
        "start_time": np.array([c.spec.start_time for c in clips], np.float32),
        "speed": np.array([c.spec.speed for c in clips], np.float32),
        "mirrored": np.array([c.spec.mirrored for c in clips], bool),
    }


# ----------------------------------------------------------------------------- writers
class SplitWriter:
    """Writes one split into temporary files (the caller renames them when every split is done).

    npy: videoframes_clips_{split}.npy (N, 8, S, S, 3) uint8 and joint_3d_clips_{split}.npy
    (N, 8, 17, 3) float32, through np.lib.format.open_memmap (never the whole array in memory).
    h5: {split}.h5 with frames, joints, root, intrinsics and per-clip metadata (docs/dataset.md)."""

    def __init__(self, split: str, n: int, size: int, paths: dict[str, Path], attrs: dict):
        self.n = n
        self.npy = None
        self.h5 = None
        if "frames_npy" in paths:
            fmt = np.lib.format
            self.npy = (
                fmt.open_memmap(paths["frames_npy"], "w+", np.uint8, (n, NUM_FRAMES, size, size, 3)),
                fmt.open_memmap(paths["joints_npy"], "w+", np.float32, (n, NUM_FRAMES, NUM_JOINTS, 3)),
            )
        if "h5" in paths:
            import h5py

            f = self.h5 = h5py.File(paths["h5"], "w")
            f.create_dataset("frames", (n, NUM_FRAMES, size, size, 3), np.uint8,
                             chunks=(1, NUM_FRAMES, size, size, 3), compression=FRAMES_COMPRESSION)
            f.create_dataset("joints", (n, NUM_FRAMES, NUM_JOINTS, 3), np.float32)
            f.create_dataset("root", (n, NUM_FRAMES, 3), np.float32)
            f.create_dataset("intrinsics", (n, 3, 3), np.float32)
            for name in ("subject", "action"):
                f.create_dataset(name, (n,), h5py.string_dtype())
            f.create_dataset("camera", (n,), np.int16)
            f.create_dataset("start_time", (n,), np.float32)
            f.create_dataset("speed", (n,), np.float32)
            f.create_dataset("mirrored", (n,), bool)
            for key, value in attrs.items():
                f.attrs[key] = value

    def write(self, batch: dict) -> None:
        lo = batch["lo"]
        hi = lo + len(batch["frames"])
        if self.npy is not None:
            self.npy[0][lo:hi] = batch["frames"]
            self.npy[1][lo:hi] = batch["joints"]
        if self.h5 is not None:
            for key in ("frames", "joints", "root", "intrinsics", "subject", "action", "camera", "start_time",
                        "speed", "mirrored"):
                self.h5[key][lo:hi] = batch[key]

    def close(self) -> None:
        if self.npy is not None:
            for array in self.npy:
                array.flush()
            self.npy = None  # drop the memmaps so the files can be renamed and reopened
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None


# ----------------------------------------------------------------------------- the command
@dataclass(frozen=True)
class MakeDataConfig:
    out: Path
    preset: str
    formats: tuple[str, ...]
    seed: int
    workers: int
    frame_size: int
    train_clips: int
    valid_clips: int
    front_cues: bool = False  # FRONT_CUES on the bodies


def config_from_args(args) -> MakeDataConfig:
    """Check the make-data flags; a bad value raises ConfigError with one plain message."""
    if args.preset not in PRESETS:
        raise ConfigError(f"--preset must be one of {sorted(PRESETS)}, got {args.preset!r}")
    preset = PRESETS[args.preset]
    formats = {"h5": ("h5",), "npy": ("npy",), "both": ("npy", "h5")}.get(args.format)
    if formats is None:
        raise ConfigError(f"--format must be h5, npy or both, got {args.format!r}")
    if args.seed is None or not 0 <= int(args.seed) < 2**63:
        raise ConfigError(f"--seed must be a non-negative integer, got {args.seed}")
    size = args.frame_size or preset.frame_size
    if not 32 <= size <= 1024:
        raise ConfigError(f"--frame-size must be between 32 and 1024 pixels, got {size}")
    counts = [args.train_clips or preset.train_clips, args.valid_clips or preset.valid_clips]
    for flag, n in zip(("--train-clips", "--valid-clips"), counts, strict=True):
        if n <= 0:
            raise ConfigError(f"{flag} must be positive, got {n}")
    workers = args.workers or default_workers()
    if not workers or workers <= 0:
        raise ConfigError(f"--workers must be positive, got {args.workers}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    return MakeDataConfig(out, args.preset, formats, int(args.seed), int(workers), int(size), *counts,
                          front_cues=bool(args.front_cues))


def default_workers() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def output_names(split: str) -> dict[str, str]:
    return {"frames_npy": f"videoframes_clips_{split}.npy", "joints_npy": f"joint_3d_clips_{split}.npy",
            "h5": f"{split}.h5"}


def estimated_bytes(cfg: MakeDataConfig) -> int:
    """Disk space the run needs at most (frames uncompressed in every format)."""
    clips = cfg.train_clips + cfg.valid_clips
    per_clip = NUM_FRAMES * (cfg.frame_size**2 * 3 + NUM_JOINTS * 3 * 4)
    return clips * per_clip * len(cfg.formats) + (1 << 20)


def generate(cfg: MakeDataConfig, progress: bool = True) -> dict:
    """Render both splits into cfg.out atomically: every file is written under a temporary name and
    renamed only once all are complete, so a failure or interrupt leaves no half-written dataset.
    Returns a summary dict (clips, files, seconds)."""
    import time

    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    cpu0 = {who: _cpu_seconds(who) for who in ("self", "children")}  # children: finished workers
    try:
        cfg.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {cfg.out}: cannot create the folder ({e.strerror})") from None
    if not os.access(cfg.out, os.W_OK):
        raise ConfigError(f"--out {cfg.out}: folder is not writable")
    free = shutil.disk_usage(cfg.out).free
    if free < estimated_bytes(cfg):
        raise ConfigError(f"--out {cfg.out}: needs about {estimated_bytes(cfg) / 1e9:.1f} GB, only "
                          f"{free / 1e9:.1f} GB free")
    motions = mocap.load_motions()
    counts = {"train": cfg.train_clips, "valid": cfg.valid_clips}
    per_task = max(1, min(8, (1 << 22) // (NUM_FRAMES * cfg.frame_size**2 * 3)))  # ~4 MiB per result
    tasks = [(cfg.seed, split, lo, min(lo + per_task, counts[split]))
             for split in SPLITS for lo in range(0, counts[split], per_task)]
    workers = min(cfg.workers, len(tasks))
    samples: dict[str, dict] = {"train": {}, "valid": {}}
    files = []
    with contextlib.ExitStack() as stack:
        # Start the workers first: no pybullet client and no open HDF5 file exist in this process yet.
        if workers > 1:
            # spawn, not fork: the parent may hold threads (TensorFlow, h5py) that a fork would copy
            pool = ProcessPoolExecutor(workers, mp.get_context("spawn"), _worker_init,
                                       (cfg.frame_size, cfg.front_cues))
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            results = _ordered_map(pool, _worker_render, tasks, window=4 * workers)
        else:
            renderer = stack.enter_context(Renderer(cfg.frame_size, motions, cfg.front_cues))
            results = (_render_task(renderer, task) for task in tasks)
        writers = {}
        for split in SPLITS:
            names = output_names(split)
            paths = {}
            for key, name in names.items():
                if ("h5" if key == "h5" else "npy") in cfg.formats:
                    paths[key] = stack.enter_context(atomic_path(cfg.out / name))
                    files.append(name)
            attrs = {"joint_names": list(JOINT_NAMES), "units": "m", "coordinate_frame": COORDINATE_FRAME,
                     "fps": FPS, "generator_version": GENERATOR_VERSION, "seed": cfg.seed,
                     "preset": cfg.preset, "split": split, "frame_size": cfg.frame_size,
                     "front_cues": cfg.front_cues}
            writers[split] = SplitWriter(split, counts[split], cfg.frame_size, paths, attrs)
            stack.callback(writers[split].close)
        sheet = stack.enter_context(atomic_path(cfg.out / "contact_sheet.png"))
        files.append("contact_sheet.png")
        bar = stack.enter_context(tqdm(total=sum(counts.values()), unit="clip", desc="make-data",
                                       disable=not progress or None))
        for batch in _plain_errors(results):
            writers[batch["split"]].write(batch)
            _keep_samples(samples[batch["split"]], batch, counts[batch["split"]])
            bar.update(len(batch["frames"]))
        for w in writers.values():
            w.close()
        write_contact_sheet(sheet, samples, cfg)
    return {"clips": counts, "files": files, "seconds": time.perf_counter() - t0, "workers": workers,
            "cpu_seconds": {who: _cpu_seconds(who) - cpu0[who] for who in cpu0}}


def _cpu_seconds(who: str) -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


COORDINATE_FRAME = (
    "camera coordinates in metres: x right, y down, z forward along the optical axis; joints are "
    "root-relative (pelvis, joint 0, at the origin); root is the pelvis position; project(joints + root, "
    "intrinsics) gives pixels with the top-left pixel centre at (0, 0)"
)
# Clips shown on the contact sheet (clip i plays motion i mod 15: walk, run, kick, dance_a, spin, ...).
SHEET_INDICES = {"train": (14, 11, 8, 3, 12, 6), "valid": (9, 1, 7)}


def _sheet_indices(split: str, n: int) -> tuple[int, ...]:
    return tuple(i for i in SHEET_INDICES[split] if i < n) or tuple(range(min(3, n)))


def _keep_samples(kept: dict, batch: dict, n: int) -> None:
    """Keep the clips of `batch` that the contact sheet shows."""
    for i in _sheet_indices(batch["split"], n):
        if batch["lo"] <= i < batch["lo"] + len(batch["frames"]):
            j = i - batch["lo"]
            kept[i] = {k: batch[k][j] for k in ("frames", "joints", "root", "intrinsics", "subject", "action",
                                                 "camera", "mirrored")}


def _plain_errors(results):
    try:
        yield from results
    except BrokenProcessPool:
        raise PoseUtilsError("a render worker process failed to start or died (out of memory? a script "
                             "read from stdin, which spawned workers cannot re-import?); try --workers 1 "
                             "or --debug") from None


def _ordered_map(pool, func, tasks, window: int):
    """pool.map that keeps at most `window` tasks in flight (bounded memory) and yields in order.
    A crashed worker raises BrokenProcessPool instead of hanging."""
    pending = deque()
    for task in tasks:
        pending.append(pool.submit(func, task))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def write_contact_sheet(path: Path, samples: dict, cfg: MakeDataConfig) -> None:
    """Frames 0, 3 and 7 of the kept clips with their labels projected on them."""
    from .plots import contact_sheet

    frames, joints_2d, titles = [], [], []
    for split in SPLITS:
        for _, clip in sorted(samples[split].items()):
            for i in (0, 3, NUM_FRAMES - 1):
                frames.append(clip["frames"][i])
                joints_2d.append(camera.project(clip["joints"][i] + clip["root"][i], clip["intrinsics"]))
                flag = " M" if clip["mirrored"] else ""
                tag = f"{split} {clip['subject']} {clip['action']} c{clip['camera']}{flag}"
                titles.append(tag if i == 0 else f"frame {i}")
    fig = contact_sheet(np.stack(frames), np.stack(joints_2d), titles=titles, ncols=9, panel_inches=1.8,
                        suptitle=f"make-data preset={cfg.preset} seed={cfg.seed}"
                                 f"{' front-cues' if cfg.front_cues else ''} ({cfg.frame_size} px, "
                                 f"{FPS:g} fps), frames 0, 3, 7 of each clip; labels projected with "
                                 "the stored intrinsics (blue left, red right); c = camera, M = mirrored")
    fig.savefig(path, format="png", dpi=100)


def main(args) -> int:
    """`python -m pose_utils make-data`: render the dataset (see docs/dataset.md)."""
    cfg = config_from_args(args)
    summary = generate(cfg)
    total = sum(summary["clips"].values())
    print(f"wrote {total} clips ({summary['clips']['train']} train, {summary['clips']['valid']} valid) of "
          f"{NUM_FRAMES} frames at {cfg.frame_size}x{cfg.frame_size} to {cfg.out} in "
          f"{summary['seconds']:.1f} s with {summary['workers']} worker(s): {', '.join(summary['files'])}")
    return 0
