"""How fast is `make-data` compared with pybullet's bare render loop?

Three measurements in one run, same frame size, so their ratios mean something on a shared machine:

1. bare: one pybullet DIRECT client poses the humanoid (resetBasePositionAndOrientation +
   resetJointStatesMultiDof) and calls getCameraImage(ER_TINY_RENDERER) with the generator's own
   poses, cameras and lighting for the same clips (precomputed), so it draws the same pixels; nothing else.
2. generator, in-process: render.Renderer.render_clip for the same number of frames on one core (posing,
   joint read-out, camera framing, background, compositing, mirroring).
3. make-data end to end for a preset (spawned workers, .npy memmaps, lzf HDF5, contact sheet), timed
   from the command's start to its last rename, with the on-disk size of every file it wrote.

    python benchmarks/render_speed.py                       # 224 px, bare vs generator, small preset
    python benchmarks/render_speed.py --preset none         # only 1 and 2
    python benchmarks/render_speed.py --course --tmp /tmp   # also the course preset's wall time (~7 GB
                                                            # npy + ~1.3 GB h5 under --tmp, deleted after)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pose_course.datagen import make_config, make_data, mocap, render, scene  # noqa: E402
from pose_utils import camera  # noqa: E402
from pose_utils.skeleton import NUM_FRAMES  # noqa: E402


def prepare(renderer: render.Renderer, specs: list[scene.ClipSpec]) -> list[tuple]:
    """What the bare loop needs to draw exactly the generator's pictures: per clip the subject, the 8
    poses, the view and projection matrices and the lighting arguments (computed outside the timing)."""
    p, size = renderer.p, renderer.size
    prepared = []
    for spec in specs:
        info = scene.SUBJECT_INFO[spec.subject]
        body = renderer.body(spec.subject)
        poses = [q.transformed(yaw=spec.yaw, scale=info.scale)
                 for q in renderer.motions[spec.action].sample(spec.start_time, NUM_FRAMES, scene.FPS,
                                                               spec.speed)]
        world = []
        for q in poses:
            renderer.pose(body, q)
            world.append(renderer.joints_world(body, info.scale))
        R, t, K = scene.frame_camera(np.stack(world), info, spec, size)
        proj = render.gl_projection(K, size)
        light = render.camera_image_kwargs(p, spec)
        targets = [(q.root_position.tolist(), q.root_rotation.tolist(), *q.joint_targets()) for q in poses]
        prepared.append((spec.subject, targets, camera.gl_view_matrix(R, t), proj, light))
    return prepared


def bare_loop(renderer: render.Renderer, prepared: list[tuple]) -> float:
    """Seconds for pose + getCameraImage of every prepared frame, nothing else."""
    p, cid, size = renderer.p, renderer.client, renderer.size
    start = time.process_time()
    for subject, targets, view, proj, light in prepared:
        body = renderer.body(subject)
        for position, rotation, indices, values in targets:
            p.resetBasePositionAndOrientation(body, position, rotation, physicsClientId=cid)
            p.resetJointStatesMultiDof(body, indices, values, physicsClientId=cid)
            p.getCameraImage(size, size, view, proj, physicsClientId=cid, **light)
    return time.process_time() - start


def generator_loop(renderer: render.Renderer, specs: list[scene.ClipSpec]) -> float:
    """Seconds for render.Renderer.render_clip of every clip (labels, framing, background, compositing)."""
    start = time.process_time()
    for spec in specs:
        renderer.render_clip(spec)
    return time.process_time() - start


def end_to_end(preset: str, workers: int | None, size: int | None, root: str | None, keep: bool) -> None:
    out = Path(tempfile.mkdtemp(prefix=f"make-data-{preset}-", dir=root))
    try:
        cfg = make_config(out, preset=preset, format="both", workers=workers, frame_size=size)
        summary = make_data(cfg)
        frames = sum(summary["clips"].values()) * NUM_FRAMES
        cpu = summary["cpu_seconds"]
        print(f"make-data --preset {preset} ({cfg.frame_size} px, {summary['workers']} workers): "
              f"{summary['seconds']:.1f} s wall, {frames / summary['seconds']:.0f} frames/s; CPU seconds: "
              f"parent {cpu['self']:.1f}, workers {cpu['children']:.1f} "
              f"({1000 * (cpu['self'] + cpu['children']) / frames:.2f} ms per frame)")
        sizes = {f.name: f.stat().st_size for f in sorted(out.iterdir())}
        for name, n in sizes.items():
            print(f"  {name:32s} {n / 2**20:10.1f} MiB")
        npy = sum(n for k, n in sizes.items() if k.endswith(".npy"))
        h5 = sum(n for k, n in sizes.items() if k.endswith(".h5"))
        print(f"  npy layout {npy / 2**30:.2f} GiB, h5 layout {h5 / 2**30:.2f} GiB "
              f"({npy / max(h5, 1):.1f}x smaller)")
    finally:
        if keep:
            print(f"  kept {out}")
        else:
            shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frame-size", type=int, default=224)
    parser.add_argument("--clips", type=int, default=30, help="clips for the in-process comparison")
    parser.add_argument("--rounds", type=int, default=3, help="repeats of each loop (best one counts)")
    parser.add_argument("--preset", default="small", choices=["none", "tiny", "small", "course"],
                        help="make-data preset to time end to end (at its own frame size)")
    parser.add_argument("--course", action="store_true", help="also time the course preset")
    parser.add_argument("--workers", type=int, default=None, help="make-data workers (default: CPUs)")
    parser.add_argument("--tmp", default=None, help="folder for the end-to-end outputs (deleted after)")
    parser.add_argument("--keep", action="store_true", help="keep the end-to-end outputs")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")

    frames = args.clips * NUM_FRAMES
    print(f"{args.frame_size}x{args.frame_size} frames, {frames} per loop, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    motions = mocap.load_motions()
    specs = [scene.clip_spec(0, "train", i, motions) for i in range(args.clips)]
    with render.Renderer(args.frame_size, motions) as renderer:
        prepared = prepare(renderer, specs)  # also loads every subject's body
        # Interleave the two and keep each one's best round: other processes' load comes and goes.
        bare = min(bare_loop(renderer, prepared) for _ in range(args.rounds)) / frames
        gen = min(generator_loop(renderer, specs) for _ in range(args.rounds)) / frames
        bare = min(bare, min(bare_loop(renderer, prepared) for _ in range(args.rounds)) / frames)
    print(f"bare pybullet loop, same poses and cameras (1 core): {1 / bare:6.0f} frames/s "
          f"({1000 * bare:.2f} ms/frame)")
    print(f"generator render_clip                      (1 core): {1 / gen:6.0f} frames/s "
          f"({1000 * gen:.2f} ms/frame) = {bare / gen:.2f}x the bare loop's rate")
    for preset in [p for p in (args.preset, "course" if args.course else "none") if p != "none"]:
        end_to_end(preset, args.workers, None, args.tmp, args.keep)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
