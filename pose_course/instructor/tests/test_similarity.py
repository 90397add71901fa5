"""The similarity report (pose_course.instructor.grading.similarity) on fixture texts: no sandbox, no
notebook runs. Submissions are small fake repositories in tmp_path holding the real exercise modules of
this repository, released (stubs) with a few exercises written three ways: independently (below), as a
renamed and reformatted copy of that, and as the instructor's solution verbatim."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pose_course.instructor.grading import similarity as sim
from pose_course.instructor.grading.answer_key import Answer as KeyAnswer
from pose_course.instructor.grading.answer_key import Instructor
from pose_course.instructor.grading.feedback import write_grades
from pose_course.instructor.grading.results import Answer, Result
from pose_course.instructor.release import clear_solutions

ROOT = Path(__file__).resolve().parents[3]  # the instructor's repository
PROCRUSTES = "pose_utils/metrics.py:procrustes_align"
GRADIENT = "pose_utils/gradcheck.py:numerical_gradient"
EPOCHS = "pose_utils/training/epochs.py:run_epochs"

# Written without looking at the instructor's regions beyond their contract: one pose at a time with the
# SVD of the cross-covariance, indices walked flat, sums kept as floats.
# The one-line metrics come out alike from anyone who writes them right (the first two differ from the
# instructor's only in names or a library call); they must not make two correct students a pair.
ONE_LINERS = {
    "pose_utils/metrics.py:mse_loss": "return float(np.mean((y_pred - y_true) ** 2))\n",
    "pose_utils/metrics.py:joint_errors": "return np.linalg.norm(y_pred - y_true, axis=-1)\n",
    "pose_utils/metrics.py:mpjpe": "return float(np.mean(joint_errors(y_true, y_pred)))\n",
    "pose_utils/metrics.py:per_joint_mpjpe":
        "return joint_errors(y_true, y_pred).reshape(-1, NUM_JOINTS).mean(axis=0)\n",
}
INDEPENDENT = {
    **ONE_LINERS,
    PROCRUSTES: """\
        shape = y_pred.shape
        targets = y_true.reshape(-1, NUM_JOINTS, 3)
        sources = y_pred.reshape(-1, NUM_JOINTS, 3)
        aligned = np.empty_like(sources)
        for n in range(len(sources)):
            a, b = targets[n], sources[n]
            ca, cb = a.mean(axis=0), b.mean(axis=0)
            a0, b0 = a - ca, b - cb
            var_b = (b0 ** 2).sum()
            if var_b == 0:  # every joint in one place: nothing to rotate or scale
                aligned[n] = ca
                continue
            u, s, vt = np.linalg.svd(b0.T @ a0)
            d = np.sign(np.linalg.det(u @ vt)) or 1.0
            fix = np.array([1.0, 1.0, d])
            rot = (u * fix) @ vt
            aligned[n] = (s * fix).sum() / var_b * b0 @ rot + ca
        return aligned.reshape(shape)
        """,
    GRADIENT: """\
        grad = np.empty_like(x)
        for i in range(x.size):
            idx = np.unravel_index(i, x.shape)
            original = x[idx]
            values = []
            for step in (h, -h):
                x[idx] = original + step
                values.append(f(x))
            x[idx] = original
            grad[idx] = (values[0] - values[1]) / (2 * h)
        return grad
        """,
    EPOCHS: """\
        for e in range(start, epochs):
            loss_sum = err_sum = n = 0.0
            for batch_loss, batch_err, batch_n in train_epoch(e):
                loss_sum += float(batch_loss)
                err_sum += float(batch_err)
                n += float(batch_n)
            v_loss, v_err, v_n = (float(v) for v in validate(e))
            history["train_loss"].append(loss_sum / n)
            history["train_mpjpe"].append(err_sum / n * 1000)
            history["val_loss"].append(v_loss / v_n)
            history["val_mpjpe"].append(v_err / v_n * 1000)
            if after_epoch:
                after_epoch(e, history)
        """,
}

# INDEPENDENT copied: every name changed, comments changed, statements split and joined, spacing redone.
RENAMED = {
    **ONE_LINERS,
    PROCRUSTES: """\
        # keep the caller's shape for the end
        orig_shape = y_pred.shape
        gt = y_true.reshape(-1, NUM_JOINTS, 3); pr = y_pred.reshape(-1, NUM_JOINTS, 3)
        result = np.empty_like(pr)
        for k in range(len(pr)):
            p, q = gt[k], pr[k]
            mp, mq = p.mean(axis=0), q.mean(axis=0)
            p_c, q_c = p - mp, q - mq
            spread = (q_c**2).sum()
            if spread == 0:
                result[k] = mp
                continue
            U, S, Vt = np.linalg.svd(q_c.T@p_c)
            sgn = np.sign(np.linalg.det(U@Vt)) or 1.0
            flip = np.array([1.0, 1.0, sgn])
            R = (U*flip)@Vt
            result[k] = (S*flip).sum()/spread*q_c@R + mp
        return result.reshape(orig_shape)
        """,
    GRADIENT: """\
        g = np.empty_like(x)
        for flat in range(x.size):
            pos = np.unravel_index(flat, x.shape)
            keep = x[pos]
            fs = []
            for delta in (h, -h):
                x[pos] = keep + delta
                fs.append(
                    f(x)
                )
            x[pos] = keep  # restore
            g[pos] = (fs[0] - fs[1]) / (2 * h)
        return g
        """,
    EPOCHS: """\
        for ep in range(start, epochs):
            tl = te = cnt = 0.0
            for a, b, c in train_epoch(ep):
                tl += float(a)
                te += float(b)
                cnt += float(c)
            vl, ve, vc = (float(t) for t in validate(ep))
            history["train_loss"].append(tl / cnt)
            history["train_mpjpe"].append(te / cnt * 1000)
            history["val_loss"].append(vl / vc)
            history["val_mpjpe"].append(ve / vc * 1000)
            if after_epoch:
                after_epoch(ep, history)
        """,
}

PARAGRAPH = ("A smaller batch takes more optimiser steps per epoch, so the validation error drops faster "
             "per epoch while its curve is noisier; the larger batch runs more clips per second because "
             "the weight update costs the same whatever the batch holds.")
OTHER_PARAGRAPH = ("Batch size trades update count for throughput. With five clips per batch I measured "
                   "twice the updates of ten, a quicker fall of MPJPE in early epochs and wider swings; "
                   "ten per batch filled the cores better and each epoch took less wall time.")


def _answer_cells() -> list[KeyAnswer]:
    """The real notebooks' answer cells, read directly (read_instructor would import papermill)."""
    import nbformat

    found = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.get("metadata", {})
            if "answer" in meta.get("tags", []):
                found.append(KeyAnswer(meta["nbgrader"]["grade_id"], meta["nbgrader"]["points"], path.name,
                                       cell.source))
    return found


def write_submission(folder: Path, bodies: dict) -> Path:
    """A submission: every module with an exercise, released, then the stubs of `bodies` (key -> the
    lines a student wrote in place of `# YOUR CODE HERE`) filled."""
    for rel in sorted({key.split(":")[0] for key in sim.exercises(ROOT)}):
        text = clear_solutions((ROOT / rel).read_text(), rel)[0]
        for key, body in bodies.items():
            if key.startswith(rel + ":"):
                lines = text.splitlines(keepends=True)
                first, last = sim.functions(text)[key.split(":", 1)[1]]
                at = next(i for i in range(first - 1, last) if lines[i].strip() == "# YOUR CODE HERE")
                indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
                lines[at:at + 3] = [textwrap.indent(textwrap.dedent(body), indent)]
                text = "".join(lines)
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Five submissions' written.json contents and the course's Key: independent, renamed (a copy of
    independent), instructor (the solutions verbatim, every exercise), and two blank releases."""
    root = tmp_path_factory.mktemp("similarity")
    names = sim.exercises(ROOT)
    instructor = root / "instructor"
    for rel in {key.split(":")[0] for key in names}:  # the instructor's modules as they are: a full copy
        (instructor / rel).parent.mkdir(parents=True, exist_ok=True)
        (instructor / rel).write_text((ROOT / rel).read_text())
    repos = {"independent": write_submission(root / "independent", INDEPENDENT),
             "renamed": write_submission(root / "renamed", RENAMED),
             "instructor": instructor,
             "blank": write_submission(root / "blank", {}),
             "blank2": write_submission(root / "blank2", {})}
    written = {name: sim.written_functions(repo, names) for name, repo in repos.items()}
    return written, sim.course_key(ROOT, _answer_cells())


def _report(batch, answers=None) -> sim.Report:
    written, key = batch
    answers = answers or {}
    prints = {n: sim.submission_prints(w, answers.get(n, {}), key) for n, w in written.items()}
    return sim.compare(prints, key)


def _pair(rep: sim.Report, a: str, b: str) -> sim.Pair:
    return next(p for p in rep.pairs if {p.a, p.b} == {a, b})


def _run(source: str, name: str):
    """A function defined by `source` (fixture text, run here to show the fixtures are right)."""
    from pose_utils.metrics import _check_pair
    from pose_utils.skeleton import NUM_JOINTS

    space = {"np": np, "NUM_JOINTS": NUM_JOINTS, "_check_pair": _check_pair,
             "RECORDED_KEYS": ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe")}
    exec(compile(textwrap.dedent(source), name, "exec"), space)  # noqa: S102 (our own fixture text)
    return space[name.split(":")[1]]


def test_the_independent_solutions_are_correct_and_differ(batch):
    written, _ = batch
    fns = {who: {key: _run(written[who][key]["source"], key) for key in (PROCRUSTES, GRADIENT, EPOCHS)}
           for who in ("independent", "instructor", "renamed")}
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.normal(size=(2, 4, 17, 3)), rng.normal(size=(2, 4, 17, 3))
    y_pred[0, 1] = 0.0  # a degenerate pose
    x = rng.normal(size=(3, 2))
    for who in ("independent", "renamed"):
        np.testing.assert_allclose(fns[who][PROCRUSTES](y_true, y_pred),
                                   fns["instructor"][PROCRUSTES](y_true, y_pred), atol=1e-9)
        np.testing.assert_allclose(fns[who][GRADIENT](lambda v: float(np.sum(np.sin(v) * v)), x),
                                   np.sin(x) + x * np.cos(x), rtol=1e-6)
        histories = []
        for fn in (fns[who][EPOCHS], fns["instructor"][EPOCHS]):
            history = {k: [] for k in ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe")}
            fn(lambda e: iter([(2.0 + e, 0.2, 4), (1.0, 0.1, 2)]), lambda e: (3.0, 0.3, 5), history, 3, 1)
            histories.append(history)
        np.testing.assert_allclose([histories[0][k] for k in sorted(histories[0])],
                                   [histories[1][k] for k in sorted(histories[1])])
    assert written["independent"][PROCRUSTES]["source"] != written["instructor"][PROCRUSTES]["source"]


def test_a_renamed_reformatted_copy_is_flagged(batch):
    pair = _pair(_report(batch), "independent", "renamed")
    assert pair.flagged and pair.code >= 0.9
    found = {m.item: m for m in pair.matches}
    for key in (PROCRUSTES, GRADIENT, EPOCHS):
        assert found[key].score >= 0.9 and found[key].shared >= sim.MIN_SHARED


def test_independent_correct_solutions_are_no_pair(batch):
    rep = _report(batch)
    for other in ("independent", "renamed"):
        pair = _pair(rep, other, "instructor")
        assert not pair.flagged and pair.code < 0.25
        assert {m.item for m in pair.matches} <= set(ONE_LINERS)  # alike, but too short to count
    assert {(p.a, p.b) for p in rep.flagged} == {("independent", "renamed")}


def test_the_instructor_solution_verbatim_is_an_instructor_match(batch):
    rep = _report(batch)
    [copied] = rep.copied
    assert copied.a == "instructor" and copied.code == 1.0
    assert {m.item for m in copied.matches} == set(rep.key.functions)
    others = {p.a: p for p in rep.instructor}
    assert not others["independent"].flagged and others["independent"].code < 0.25


def test_blank_release_stubs_are_no_pair(batch):
    written, key = batch
    for name in ("blank", "blank2"):
        assert all("source" in entry for entry in written[name].values())  # the stubs were read...
        assert not any(sim.submission_prints(written[name], {}, key).values())  # ...and are all template
    pair = _pair(_report(batch), "blank", "blank2")
    assert not pair.flagged and pair.shared == 0 and pair.matches == []


def test_a_copied_paragraph_is_flagged_and_a_different_answer_is_not(batch):
    gid = "answer_batch_size"
    model = next(a for a in batch[1].answers)
    assert model == f"answer {gid}"
    solution = next(a for a in _answer_cells() if a.grade_id == gid).template
    answers = {"independent": {gid: PARAGRAPH},
               "renamed": {gid: "I agree with the notes. " + PARAGRAPH.replace(";", ".")},
               "instructor": {gid: OTHER_PARAGRAPH},
               "blank": {gid: solution.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")},
               "blank2": {gid: "YOUR ANSWER HERE"}}
    rep = _report(batch, answers)
    copied = {m.item: m for m in _pair(rep, "independent", "renamed").matches}[model]
    assert copied.score >= 0.8 and copied.shared >= sim.MIN_SHARED
    for a, b in (("independent", "instructor"), ("renamed", "instructor"), ("blank2", "independent")):
        assert model not in {m.item for m in _pair(rep, a, b).matches}
    pasted = next(p for p in rep.instructor if p.a == "blank")  # the model answer, pasted
    assert pasted.flagged and [m.item for m in pasted.matches] == [model]


def test_code_is_normalised():
    one = sim.code_tokens('def f(a, k=2):\n    """Doc."""\n    # why\n'
                          '    return np.sum(a.T * 3, axis=-1) + len("x")\n')
    two = sim.code_tokens("def g(x,\n      k=2):\n"
                          "    return np.sum(x.T*3, axis = -1) + len('other')  # note\n")
    assert one == two == ["def", "V", "(", "V", ",", "k", "=", "2", ")", ":", "return", "np", ".", "sum", "(",
                          "V", ".", "T", "*", "3", ",", "axis", "=", "-", "1", ")", "+", "len", "(", "S", ")"]
    assert sim.code_tokens("def f(:\n  ((") == ["def", "f", "(", ":", "(", "("]  # unfinished code: its words


def test_written_json_treats_the_copy_as_untrusted_text(tmp_path):
    instructor = tmp_path / "instructor"
    (instructor / "pose_utils").mkdir(parents=True)
    (instructor / "pose_utils" / "ex.py").write_text(
        "class Box:\n    def area(self):\n        ### BEGIN SOLUTION (nb)\n        return 1\n"
        "        ### END SOLUTION\n\n\ndef free():\n"
        "    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION\n")
    (instructor / "pose_utils" / "other.py").write_text("### BEGIN SOLUTION\nX = 1\n### END SOLUTION\n")
    assert sim.exercises(instructor) == ["pose_utils/ex.py:Box.area", "pose_utils/ex.py:free",
                                         "pose_utils/other.py:(module)"]
    repo = tmp_path / "repo" / "pose_utils"
    repo.mkdir(parents=True)
    (repo / "ex.py").write_text("class Box:\n    def area(self):\n        return (  # unbalanced\n\n"
                                "def free():\n" + "    x = 1\n" * 5000)
    (repo / "other.py").write_bytes(b"#" * (sim.MAX_FILE_BYTES + 1))
    folder = tmp_path / "out" / "alice"
    folder.mkdir(parents=True)
    sim.save_written(folder, repo.parent, Instructor(instructor, {}, [], []))
    written = json.loads((folder / sim.WRITTEN).read_text())["functions"]
    area, free = written["pose_utils/ex.py:Box.area"], written["pose_utils/ex.py:free"]
    assert area["source"].startswith("    def area(self):") and "unbalanced" in area["source"]
    assert len(free["source"]) == sim.MAX_SOURCE_CHARS and free["cut"] > 0
    assert "larger than" in written["pose_utils/other.py:(module)"]["missing"]
    (repo / "ex.py").write_text("def other():\n    pass\n")
    (repo / "other.py").unlink()
    written = sim.written_functions(repo.parent, sim.exercises(instructor))
    assert written["pose_utils/ex.py:free"] == {"missing": "no function free in pose_utils/ex.py"}
    assert written["pose_utils/other.py:(module)"] == {"missing": "no file pose_utils/other.py"}
    assert [p.name for p in folder.iterdir()] == [sim.WRITTEN]  # written under a temporary name, renamed


def test_grades_md_has_the_similarity_section(batch, tmp_path):
    written, key = batch
    results = []
    for name, functions in written.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / sim.WRITTEN).write_text(json.dumps({"functions": functions}))
        results.append(Result(name, name, 10.0, answers={"answer_batch_size": Answer(PARAGRAPH)}))
    results.append(Result("zipped", "zipped.zip", 10.0))  # rejected before staging: no written.json
    instructor = Instructor(ROOT, {}, [], [], frozenset())
    write_grades(tmp_path, results, instructor)
    md = (tmp_path / "grades.md").read_text()
    section = md[md.index("## Similarity"):]
    assert "- independent ~ renamed: all code 0.98" in section and "procrustes_align" in section
    assert "- instructor ~ the instructor: all code 1.00" in section
    assert "blank ~ blank2" not in section and "no pair" not in section
    report = sim.write_report(tmp_path, results, instructor).read_text()
    assert "## Not compared" in report and "zipped" in report and "independent ~ instructor" in report
    first = sim.report(tmp_path, results, instructor)
    assert sim.report(tmp_path, results, instructor) is first  # kept while its inputs stay the same
    (tmp_path / "renamed" / sim.WRITTEN).write_text(json.dumps({"functions": {}}))
    assert [(p.a, p.b) for p in sim.report(tmp_path, results, instructor).flagged] == []
    write_grades(tmp_path, results[3:5], instructor)  # the blank ones
    section = (tmp_path / "grades.md").read_text().split("## Similarity")[1]
    assert f"- no pair at or above {sim.THRESHOLD}" in section
    assert f"- no match with the instructor's solutions at or above {sim.THRESHOLD}" in section
