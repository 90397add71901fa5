"""The assignment end to end on this repository's own notebooks: release it, fill the exercises back in
(full marks), leave them blank (no public point), and seed the mistakes students make: each costs exactly
the checks that name it. Graded for real (nbval in the bubblewrap sandbox), checks only."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from pose_course.instructor import release as rel
from pose_course.instructor.grading.answer_key import read_instructor
from pose_course.instructor.grading.grade import grade, grading_parameters

ROOT = Path(__file__).resolve().parents[3]

# mistake -> (file, the solution's text, the mistaken text), and the checks that must catch it.
SEEDED = {
    "pool_halves_frames": ("pose_utils/models/seed.py", "MaxPool3D(pool_size=SEED_POOL, strides=SEED_POOL",
                           "MaxPool3D(pool_size=(2, 2, 2), strides=(2, 2, 2)",
                           {"seed_layers", "seed_layers_hidden"}),
    "no_sigmoid": ("pose_utils/models/seed.py", 'seed_stack(frames, frame_size, "sigmoid", "seed")',
                   'seed_stack(frames, frame_size, None, "seed")', {"seed_layers", "seed_outputs"}),
    "loss_summed": ("pose_utils/metrics.py", "return float(np.mean((y_true - y_pred) ** 2))",
                    "return float(np.sum((y_true - y_pred) ** 2))", {"mse_loss", "metrics_hidden"}),
    "mpjpe_without_sqrt": ("pose_utils/metrics.py", "return np.sqrt(np.sum((y_pred - y_true) ** 2, axis=-1))",
                           "return np.sum((y_pred - y_true) ** 2, axis=-1)",
                           {"mpjpe", "per_joint_mpjpe", "metrics_hidden"}),
    "per_joint_wrong_axis": ("pose_utils/metrics.py", ".reshape(-1, NUM_JOINTS).mean(axis=0)",
                             ".reshape(-1, NUM_JOINTS).mean(axis=1)", {"per_joint_mpjpe", "metrics_hidden"}),
    "tf_loss_summed": ("pose_utils/tf_metrics.py", "tf.reduce_mean(tf.square(y_pred - y_true), axis=[1, 2",
                       "tf.reduce_sum(tf.square(y_pred - y_true), axis=[1, 2",
                       {"tf_metrics", "tf_metrics_hidden"}),
    "gradients_never_applied": ("pose_utils/training/step.py", "    optimizer.apply(grads, variables)\n", "",
                                {"train_step", "overfit", "train_step_hidden"}),
    "gradient_wrong_sign": ("pose_utils/training/step.py", "optimizer.apply(grads, variables)",
                            "optimizer.apply([-g for g in grads], variables)",
                            {"train_step", "overfit", "train_step_hidden"}),
    "inference_mode": ("pose_utils/training/step.py", "model(x, training=True)", "model(x)",
                       {"train_step_modes"}),
    "every_variable": ("pose_utils/training/step.py", "variables = model.trainable_variables",
                       "variables = model.variables", {"train_step_modes"}),
    "minmax_without_margin": ("pose_utils/targets.py",
                              "scale = np.maximum(hi - lo, min_scale) / (1.0 - 2.0 * margin)",
                              "scale = np.maximum(hi - lo, min_scale)",
                              {"targets_minmax", "targets_minmax_hidden"}),
    "procrustes_reflects": ("pose_utils/metrics.py", "sign = np.sign(np.linalg.det(r))[..., None]",
                            "sign = np.ones_like(np.linalg.det(r))[..., None]", {"p_mpjpe"}),
    "procrustes_without_scale": ("pose_utils/metrics.py", "scale = trace * norm_x / norm_y", "scale = 1.0",
                                 {"p_mpjpe", "p_mpjpe_hidden"}),
    "lstm_gates_swapped": ("pose_utils/models/recurrence.py",
                           "i = recurrent_activation(z[:, :units])\n"
                           "        f = recurrent_activation(z[:, units:2 * units])",
                           "f = recurrent_activation(z[:, :units])\n"
                           "        i = recurrent_activation(z[:, units:2 * units])",
                           {"lstm_recurrence", "lstm_recurrence_hidden"}),
    "lstm_output_gate_tanh": ("pose_utils/models/recurrence.py",
                              "h = recurrent_activation(z[:, 3 * units:]) * activation(c)",
                              "h = activation(z[:, 3 * units:]) * activation(c)",
                              {"lstm_recurrence", "lstm_recurrence_hidden"}),
    "gradient_one_sided": ("pose_utils/gradcheck.py", "grad[index] = (up - down) / (2.0 * h)",
                           "grad[index] = (up - f(x)) / h", {"gradient_check", "gradient_check_hidden"}),
    "epoch_mean_of_batch_means": (
        "pose_utils/training/epochs.py",
        "        train = np.zeros(3)\n"
        "        for sums in train_epoch(epoch):\n"
        "            train += np.asarray(sums, dtype=np.float64)\n",
        "        b = [np.asarray(s, dtype=float) for s in train_epoch(epoch)]\n"
        "        train = np.array([np.mean([s[0] / s[2] for s in b]), np.mean([s[1] / s[2] for s in b]), 1])"
        "\n",
        {"epoch_loop", "epoch_loop_hidden"}),
    "epoch_loop_ignores_start": ("pose_utils/training/epochs.py", "for epoch in range(start, epochs):",
                                 "for epoch in range(epochs):", {"epoch_loop", "epoch_loop_hidden"}),
    "gradient_x_not_restored": ("pose_utils/gradcheck.py", "        x[index] = old\n", "",
                                {"gradient_check", "gradient_check_hidden"}),
}


def mistake_groups() -> dict[str, list[str]]:
    """The seeded mistakes, several to a submission: those of one submission are in different files and
    touch pairwise disjoint sets of checks, so each check a submission loses belongs to exactly one of its
    mistakes and no mistake runs through another's code (5 submissions graded instead of 19; together they
    must cost exactly their checks, and each feedback names them)."""
    groups: list[list[str]] = []
    for mistake in sorted(SEEDED):
        file, *_, checks = SEEDED[mistake]
        home = next((g for g in groups if not any(checks & SEEDED[m][3] or file == SEEDED[m][0] for m in g)),
                    None)
        if home is None:
            groups.append(home := [])
        home.append(mistake)
    return {f"mistakes-{i}": g for i, g in enumerate(groups, 1)}


GROUP_OF = {m: name for name, group in mistake_groups().items() for m in group}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("assignment")
    blank = base / "submissions" / "blank"
    result = rel.release(ROOT, blank)
    complete = base / "submissions" / "complete"
    shutil.copytree(blank, complete)
    for name in sorted({ex.path for ex in result["exercises"]}):  # the round trip: fill back from here
        instructor = rel.strip_hidden((ROOT / name).read_text(), name)
        (complete / name).write_text(rel.fill_solutions((complete / name).read_text(), instructor, name))
    for group, mistakes in mistake_groups().items():
        folder = base / "submissions" / group
        shutil.copytree(complete, folder)
        for mistake in mistakes:
            name, right, wrong, _ = SEEDED[mistake]
            text = (folder / name).read_text()
            assert text.count(right) == 1, (mistake, right)
            (folder / name).write_text(text.replace(right, wrong))
    out = base / "grades"
    results = grade(sorted((base / "submissions").iterdir()), out, ROOT, jobs=2,
                    parameters=grading_parameters(ROOT, out), execute_notebooks=False)
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return results, rows, out


def check_columns() -> list[str]:
    """grades.csv's columns of the checks (the written answers' columns wait for hand marks)."""
    return [c.grade_id for c in read_instructor(ROOT).checks]


@pytest.mark.slow
def test_the_filled_release_earns_full_marks(graded):
    results, rows, _ = graded
    checks = check_columns()
    assert len(checks) >= 10 and set(checks) < set(rows["complete"])
    assert all(float(rows["complete"][k]) > 0 for k in checks)
    complete = next(r for r in results if r["name"] == "complete")
    assert complete["total"] == complete["max"] > 0 and rows["complete"]["status"] == "ok"


@pytest.mark.slow
def test_the_blank_release_earns_nothing_and_says_what_to_write(graded):
    _, rows, out = graded
    assert float(rows["blank"]["total"]) == 0
    feedback = (out / "blank" / "feedback.md").read_text()
    assert "not written yet (Exercise: write seed_stack in pose_utils/models/seed.py" in feedback


def _lost(rows, submission: str) -> set[str]:
    full, row = rows["complete"], rows[submission]
    return {k for k in check_columns() if float(row[k]) < float(full[k])}


@pytest.mark.slow
@pytest.mark.parametrize("mistake", sorted(SEEDED))
def test_each_seeded_mistake_loses_the_checks_that_name_it(graded, mistake):
    _, rows, out = graded
    group = GROUP_OF[mistake]
    named = SEEDED[mistake][3]
    assert named <= _lost(rows, group), (mistake, group)
    assert all(float(rows[group][k]) == 0 for k in named)  # a check is all or nothing
    feedback = (out / group / "feedback.md").read_text()
    for check in named:
        assert f"### {check}" in feedback  # each failed check is explained (hidden ones by name only)


@pytest.mark.slow
@pytest.mark.parametrize("group", sorted(mistake_groups()))
def test_seeded_mistakes_cost_nothing_but_their_own_checks(graded, group):
    _, rows, _ = graded
    full, row = rows["complete"], rows[group]
    named = {c for m in mistake_groups()[group] for c in SEEDED[m][3]}
    lost = _lost(rows, group)
    assert lost == named, (f"{group}: lost and not named {sorted(lost - named)}, "
                           f"named and kept {sorted(named - lost)}")
    assert float(row["total"]) == float(full["total"]) - sum(float(full[k]) for k in lost)


@pytest.mark.slow
def test_grades_do_not_depend_on_onednn_or_the_thread_count(graded, tmp_path, monkeypatch):
    # the fixture graded with oneDNN on and both cores; again with oneDNN off on one core (TensorFlow
    # sizes its thread pools by the CPUs it may use): printed numbers move in their last digits, which
    # the checks' tolerance absorbs (pose_course.check_outputs)
    import os

    _, rows, out = graded
    names = ["complete"]
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        again = grade([out.parent / "submissions" / n for n in names], tmp_path / "out", ROOT, jobs=1,
                      parameters=grading_parameters(ROOT, out), execute_notebooks=False)
    finally:
        os.sched_setaffinity(0, cpus)
    for r in again:
        row = rows[r["name"]]
        assert {gid: e["earned"] for gid, e in r["checks"].items()} == {
            k: float(row[k]) for k in check_columns()}, r["name"]


# The release's own tests that depend on what the release changed (its notebooks and their stored
# outputs, make check's summary); the rest are this repository's tests on the same code, run by its own
# `make test`.
RELEASE_SENSITIVE = "test_notebooks or test_check_outputs"


def _make(repo: Path, *targets: str, timeout: int, select: str | None = None) -> subprocess.CompletedProcess:
    """The release's own Makefile target, run in `repo` with this test's environment (no second install:
    the stamp is taken as up to date) and `repo` first on the path, so its pose_utils is the one tested."""
    venv = Path(sys.prefix)
    env = {**os.environ, "PYTHONPATH": str(repo), "POSE_UTILS_KERNEL_LOG": str(repo / "kernel.log")}
    extra = [f"ARGS=-k '{select}'"] if select else []
    return subprocess.run(["make", "-C", str(repo), f"VENV={venv}", "-o", str(venv / ".installed-stamp"),
                           *targets, *extra], capture_output=True, text=True, timeout=timeout, env=env)


def _classroom_steps(repo: Path) -> tuple[list[dict], list[str]]:
    """The release's GitHub Classroom steps that score one check each, and the runners its reporter sums."""
    import yaml

    from pose_course.classroom import WORKFLOW

    steps = yaml.safe_load((repo / WORKFLOW).read_text())["jobs"]["run-autograding-tests"]["steps"]
    graders = [s for s in steps if s.get("uses") == "classroom-resources/autograding-command-grader@v1"]
    return graders, steps[-1]["with"]["runners"].split(",")


def _as_the_grader_runs(repo: Path, step: dict) -> subprocess.CompletedProcess:
    """A step's command as autograding-command-grader runs it: a shell in the checkout, PATH and HOME only.
    The checkout's .venv is this test's environment (the release holds none; its `make` would make one)."""
    if not (repo / ".venv").exists():
        (repo / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return subprocess.run(step["with"]["command"], shell=True, cwd=repo, capture_output=True, text=True,
                          timeout=60, env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")})


@pytest.mark.slow
def test_the_filled_release_passes_its_own_make_check_and_make_test_fast(graded, tmp_path):
    # The grader ran the instructor's notebooks against it; here the student's own copy runs them, with
    # the release's Makefile, conftest and stored outputs (which checks and tests compare against).
    # make check runs every notebook; make test-fast the release-sensitive tests (RELEASE_SENSITIVE).
    from pose_course.cells import check_metadata

    _, _, out = graded
    repo = tmp_path / "complete"
    shutil.copytree(out.parent / "submissions" / "complete", repo)
    # the public checks of this repository's notebooks (the grade sheet has other columns than checks)
    public_points = {m["grade_id"]: m["points"] for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))
                     for cell in nbformat.read(nb, as_version=4).cells
                     if (m := check_metadata(cell)) is not None and not m["hidden"]}
    public = len(public_points)
    check = _make(repo, "check", timeout=900)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    assert f"checks: {public} of {public} passed" in check.stdout, check.stdout[-3000:]
    assert "still to write" not in check.stdout and "FAIL" not in check.stdout
    # GitHub Classroom's workflow of the release, after its make check: every step earns its points, and
    # the reporter's total is the public checks' points of this repository's notebooks
    graders, runners = _classroom_steps(repo)
    assert sorted(s["with"]["test-name"] for s in graders) == sorted(public_points) and len(graders) == public
    earned = {}
    for step in graders:
        done = _as_the_grader_runs(repo, step)
        assert done.returncode == 0, (step["with"]["command"], done.stdout, done.stderr[-2000:])
        earned[step["id"]] = step["with"]["max-score"]
    assert sum(earned[r] for r in runners) == sum(public_points.values()) > 0
    fast = _make(repo, "test-fast", timeout=900, select=RELEASE_SENSITIVE)
    assert fast.returncode == 0, fast.stdout[-3000:] + fast.stderr[-2000:]
    assert " passed" in fast.stdout and "skipped" not in fast.stdout.splitlines()[-1], fast.stdout[-1500:]


@pytest.mark.slow
def test_the_blank_release_lists_every_exercise_still_to_write(graded, tmp_path):
    _, _, out = graded
    repo = tmp_path / "blank"
    shutil.copytree(out.parent / "submissions" / "blank", repo)
    stubs = rel.release(ROOT, tmp_path / "again")["exercises"]
    check = _make(repo, "check", "NB=02", timeout=600)
    assert check.returncode != 0
    listed = check.stdout.split("exercises still to write (", 1)[1]
    assert listed.startswith(f"{len(stubs)};"), listed[:200]
    for ex in stubs:  # those of notebook 03 too: read from the code, not from the cells that ran
        assert ex.message in listed, ex.message
    # GitHub Classroom's step for an unwritten check of notebook 02 scores 0 and says why; one of a notebook
    # that make check NB=02 did not run scores 0 too
    graders = {s["with"]["test-name"]: s for s in _classroom_steps(repo)[0]}
    done = _as_the_grader_runs(repo, graders["seed_layers"])
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("seed_layers: failed, 0 of 3 points (02_model.ipynb): Exercise: write "), \
        done.stdout
    done = _as_the_grader_runs(repo, graders["overfit"])
    assert done.returncode == 1 and "did not run this check" in done.stdout, done.stdout + done.stderr
