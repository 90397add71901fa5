"""pybullet's side of a clip: the humanoid bodies (one per subject, scaled and coloured), posing, the
17 Human3.6M joints read from the posed body, and the CPU renderer (ER_TINY_RENDERER).

Labels are the 17 Human3.6M joints read from the posed body (pybullet does the forward kinematics), in
camera coordinates (metres, x right, y down, z forward), pelvis at the origin; the absolute pelvis
position and the intrinsics are kept so labels project onto pixels. A mirrored clip is flipped
left-right with its labels mirrored to match. docs/dataset.md describes the data.
"""

from __future__ import annotations

import contextlib
import os
import sys
import zlib
from dataclasses import dataclass

import numpy as np

from pose_course.datagen import mocap
from pose_course.datagen.scene import (
    DEFAULT_STYLE,
    FPS,
    STYLES,
    SUBJECT_INFO,
    ClipSpec,
    background,
    clip_spec,
    frame_camera,
)
from pose_utils import camera
from pose_utils.skeleton import NUM_FRAMES, NUM_JOINTS, flip_left_right

BASE_SCALING = 0.25  # humanoid.urdf's globalScaling for a body of scene.NOMINAL_HEIGHT
PARK = (0.0, -1000.0, 0.0)  # where unused bodies wait: far outside every camera's view

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


def gl_projection(K: np.ndarray, size: int, near: float = 0.05, far: float = 100.0) -> list[float]:
    """OpenGL projection matrix (16 floats, column-major, pybullet's format) under which pybullet's
    ER_TINY_RENDERER draws a size x size frame exactly as the pinhole intrinsics K project.

    computeProjectionMatrixFOV alone puts the principal point at (size/2, size/2 - 1) (tests/test_dataset.py
    renders squares and compares their centroids with camera.project); the two off-centre terms move it
    to K's (cx, cy)."""
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
    shadow maps: they are the renderer's most expensive option, docs/dataset.md "Measured"), and a
    segmentation buffer that also holds link indices."""
    return dict(renderer=p.ER_TINY_RENDERER, shadow=0, lightDirection=list(spec.light_direction),
                lightColor=list(spec.light_color), lightAmbientCoeff=spec.light_coeffs[0],
                lightDiffuseCoeff=spec.light_coeffs[1], lightSpecularCoeff=spec.light_coeffs[2],
                flags=p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX)


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
                 mirrored: bool | None = None, front_cues: bool | None = None,
                 style: str = DEFAULT_STYLE) -> list[Clip]:
    """Render clips in this process (tests, notebooks): the same clips make-data writes for that seed,
    style and front_cues (None: the style's, as make-data's default)."""
    if front_cues is None:
        front_cues = STYLES[style].front_cues
    motions = mocap.load_motions()
    with Renderer(frame_size, motions, front_cues) as renderer:
        return [renderer.render_clip(clip_spec(seed, split, int(i), motions, mirrored, style=style),
                                     with_mask) for i in indices]
