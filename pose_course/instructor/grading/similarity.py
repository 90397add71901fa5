"""After grading, a local similarity report among the submissions graded into OUT (MOSS without the network).

What is compared: each *exercise function*, a function of the instructor's pose_utils/ that encloses a
`### BEGIN SOLUTION` region (found by file and qualified name), as the submission has it (`save_written`
keeps it in OUT/NAME/written.json while grading, since the work copies are deleted), and each written
answer (result.json's answers). Code becomes tokens (identifiers one placeholder V, except keywords,
builtins, attribute names, keyword-argument names and the library names in KEPT_NAMES; numbers kept;
strings one placeholder S; comments, docstrings and layout dropped), prose its lowercase words. Their
k-grams are hashed and winnowed (Schleimer, Wilkerson and Aiken 2003: the smallest hash of every window
of W consecutive k-grams), so any common run of W + K - 1 tokens or words is found. The template, the
release's stub functions and answer cells, is removed from every set: what every student received never
counts.

Similarity is the Jaccard index of two fingerprint sets. A pair is listed when one exercise or answer
reaches THRESHOLD with at least MIN_SHARED fingerprints in common, or when all their functions together
do; a submission is listed against the instructor's own solutions by the same rule.
"""

from __future__ import annotations

import ast
import builtins
import io
import itertools
import json
import keyword
import re
import textwrap
import tokenize
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from pose_course.instructor.grading.answer_key import Instructor
from pose_course.instructor.grading.results import Result
from pose_course.instructor.release import BEGIN_SOLUTION, DEF, _answer_stub, clear_solutions
from pose_utils.errors import DataError
from pose_utils.fileio import atomic_path, write_json

K_CODE, W_CODE = 5, 4  # tokens: a common run of 8 tokens is always found (one short statement)
K_PROSE, W_PROSE = 4, 3  # words: a common run of 6 words is always found (half a sentence)
# Jaccard index at or above which a function, an answer or a pair's whole code counts as a match. On the
# fixtures of tests/test_similarity.py an independent correct solution scored 0.09-0.12 per function
# against the instructor's and a renamed, reformatted copy 0.95-1.00 (docs/assignment.md, "Similarity").
THRESHOLD = 0.5
# Fingerprints a listed match must share: a one-line exercise has 3-10 after the template is removed, and
# every correct student writes it alike; 12 is about 30 tokens or 25 words in common.
MIN_SHARED = 12
KEPT_NAMES = frozenset(dir(builtins)) | {"np", "tf", "keras", "layers", "ops", "math", "self", "cls"}
MAX_FILE_BYTES = 1 << 20  # a submission's module read for its exercises; larger ones are recorded missing
MAX_SOURCE_CHARS = 20_000  # of one function or answer; the rest is cut
WRITTEN, REPORT = "written.json", "similarity.md"
SHOWN = 10  # pairs (and instructor matches) listed in grades.md; similarity.md lists them all
_NONE: frozenset = frozenset()
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}


# ----------------------------------------------------------------------------- the exercise functions


def functions(text: str) -> dict[str, tuple[int, int]]:
    """{qualified name: (first line, last line)} of the functions of a module's text, decorators included,
    the last definition of a name winning as when the module runs; SyntaxError and the like if unparsable."""
    found = {}
    stack = [(ast.parse(text), "")]
    while stack:  # statements only, iteratively: untrusted code may nest expressions very deeply
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qual = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                    if qual not in found or found[qual][0] < start:
                        found[qual] = (start, child.end_lineno)
                stack.append((child, qual + "."))
            elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                stack.append((child, prefix))
    return found


def exercises(root: Path) -> list[str]:
    """The exercise functions of the instructor's repository ROOT: "PATH:QUALNAME", in file order."""
    found = []
    for path in sorted((Path(root) / "pose_utils").rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
            spans = functions(text) if "### BEGIN SOLUTION" in text else None
        except (UnicodeDecodeError, SyntaxError, ValueError) as e:
            raise DataError(f"{path}: cannot read the instructor's exercises in it ({e})") from None
        if spans is None:
            continue
        rel = path.relative_to(root).as_posix()
        for number, line in enumerate(text.splitlines(), start=1):
            if BEGIN_SOLUTION.match(line):
                around = [(start, qual) for qual, (start, end) in spans.items() if start <= number <= end]
                key = f"{rel}:{max(around)[1] if around else '(module)'}"
                if key not in found:
                    found.append(key)
    return found


def function_source(text: str, qual: str) -> str | None:
    """The source of function `qual` in a module's text, None if it has none. A text that does not parse
    is searched by indentation for the last `def NAME(`: what the student wrote still counts."""
    lines = text.splitlines(keepends=True)
    try:
        span = functions(text).get(qual)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        name = qual.rsplit(".", 1)[-1]
        starts = [i for i, line in enumerate(lines) if (m := DEF.match(line)) and m["name"] == name]
        if not starts:
            return None
        i = starts[-1]
        indent = len(DEF.match(lines[i])["indent"])
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            j += 1
        return "".join(lines[i:j])
    return None if span is None else "".join(lines[span[0] - 1:span[1]])


def written_functions(repo: Path, names: list[str]) -> dict:
    """{"PATH:QUALNAME": {"source": text, "cut": chars dropped} or {"missing": why}} of a staged
    submission: untrusted text, read with a size limit and parsed, never imported."""
    out, texts = {}, {}
    for key in names:
        rel, qual = key.split(":", 1)
        if rel not in texts:
            texts[rel] = _read_module(Path(repo), rel)
        missing, text = texts[rel]
        source = None if missing else function_source(text, qual)
        if missing or source is None:
            out[key] = {"missing": missing or f"no function {qual} in {rel}"}
        else:
            out[key] = {"source": source[:MAX_SOURCE_CHARS], "cut": max(0, len(source) - MAX_SOURCE_CHARS)}
    return out


def _read_module(repo: Path, rel: str) -> tuple[str | None, str]:
    """(why it is missing or None, its text) of a submission's module."""
    path = repo / rel
    if path.is_symlink() or not path.is_file():
        return f"no file {rel}", ""
    if path.stat().st_size > MAX_FILE_BYTES:
        return f"{rel} is larger than {MAX_FILE_BYTES} bytes", ""
    return None, path.read_bytes().decode("utf-8", "replace")


def save_written(folder: Path, repo: Path, instructor: Instructor) -> None:
    """OUT/NAME/written.json: the submission's exercise functions, for the batch's similarity report."""
    write_json(Path(folder) / WRITTEN, {"functions": written_functions(repo, exercises(instructor.root))})


# ----------------------------------------------------------------------------- fingerprints


def code_tokens(source: str) -> list[str]:
    """The normalised tokens of Python source (this module's docstring says how)."""
    try:
        raw = [t for t in tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline)
               if t.type != tokenize.COMMENT and t.type != tokenize.NL]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return re.findall(r"\w+|[^\w\s]", source)  # unfinished code still has its words
    out, depth = [], 0
    for i, t in enumerate(raw):
        before = raw[i - 1] if i else None
        after = raw[i + 1] if i + 1 < len(raw) else None
        if t.type in _SKIPPED:
            continue
        if t.type == tokenize.STRING:
            statement = before is None or before.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
            if statement and (after is None or after.type in (tokenize.NEWLINE, tokenize.ENDMARKER)):
                continue  # a docstring, or a string as a statement: a comment in effect
            out.append("S")
        elif t.type == tokenize.NAME:
            kept = (keyword.iskeyword(t.string) or t.string in KEPT_NAMES
                    or (before is not None and before.string == ".")
                    or (depth > 0 and after is not None and after.string == "="))
            out.append(t.string if kept else "V")
        else:
            if t.type == tokenize.OP and t.string in ("(", "[", "{"):
                depth += 1
            elif t.type == tokenize.OP and t.string in (")", "]", "}"):
                depth = max(0, depth - 1)
            out.append(t.string)
    return out


def prose_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def winnow(units: list[str], k: int, w: int) -> set[int]:
    """The winnowed hashes of the k-grams of `units`: the smallest of every window of w (the rightmost on
    a tie, each position once). Fewer than k units make one k-gram; fewer than w k-grams one window."""
    # crc32 of each unit, then Python's hash of the tuple of k of them: both the same in every process
    # (unlike hash(str)), so a regrade selects the same fingerprints, and both run in C
    ids = [zlib.crc32(u.encode("utf-8", "surrogatepass")) for u in units]
    if len(ids) < k:
        hashes = [hash(tuple(ids))] if ids else []
    else:
        hashes = [hash(gram) for gram in zip(*(ids[j:] for j in range(k)), strict=False)]
    picked, last = set(), -1
    for i in range(max(1, len(hashes) - w + 1) if hashes else 0):
        window = hashes[i:i + w]
        low = min(window)
        at = i + len(window) - 1 - window[::-1].index(low)
        if at != last:
            picked.add(low)
            last = at
    return picked


def code_prints(source: str) -> set[int]:
    return winnow(code_tokens(source[:MAX_SOURCE_CHARS]), K_CODE, W_CODE)


def prose_prints(text: str) -> set[int]:
    return winnow(prose_words(text[:MAX_SOURCE_CHARS]), K_PROSE, W_PROSE)


@dataclass
class Key:
    """What the course itself holds: the template's fingerprints (removed everywhere) and the instructor's
    solution of each item, template removed. Items: exercise functions, then "answer GRADE_ID"."""

    functions: list[str]
    answers: list[str]
    template: set[int]
    solutions: dict[str, set[int]]


def course_key(root: Path, answers=()) -> Key:
    """The Key of the instructor's repository ROOT and its answer cells (answer_key.Answer records)."""
    root = Path(root)
    names = exercises(root)
    template, solutions, texts = set(), {}, {}
    for key in names:
        rel, qual = key.split(":", 1)
        if rel not in texts:
            text = (root / rel).read_text(encoding="utf-8")
            texts[rel] = (text, clear_solutions(text, rel)[0])
        text, stub = texts[rel]
        template |= code_prints(function_source(stub, qual) or "")
        solutions[key] = code_prints(function_source(text, qual) or "")
    for a in answers:
        template |= prose_prints(_answer_stub(a.template, a.grade_id))
        solutions[f"answer {a.grade_id}"] = prose_prints(a.template)
    return Key(names, [f"answer {a.grade_id}" for a in answers], template,
               {k: v - template for k, v in solutions.items()})


def submission_prints(written: dict, answers: dict, key: Key) -> dict[str, set[int]]:
    """{item: fingerprints, template removed} of one submission: `written` is written.json's "functions",
    `answers` {grade_id: text or None}."""
    out = {}
    for item in key.functions:
        entry = written.get(item)
        if isinstance(entry, dict) and isinstance(entry.get("source"), str):
            out[item] = code_prints(entry["source"]) - key.template
    for item in key.answers:
        text = answers.get(item.split(" ", 1)[1])
        if isinstance(text, str):
            out[item] = prose_prints(text) - key.template
    return out


# ----------------------------------------------------------------------------- the comparison


@dataclass
class Match:
    item: str
    score: float  # Jaccard index
    shared: int  # fingerprints in common


@dataclass
class Pair:
    a: str
    b: str  # "the instructor" for a match against the solutions
    code: float  # Jaccard index of all the functions together
    shared: int
    matches: list[Match]  # the items at or above THRESHOLD

    @property
    def flagged(self) -> bool:
        strong = any(m.shared >= MIN_SHARED for m in self.matches)
        return strong or (self.code >= THRESHOLD and self.shared >= MIN_SHARED)

    @property
    def top(self) -> float:
        return max([self.code, *(m.score for m in self.matches)])


@dataclass
class Report:
    names: list[str]
    key: Key
    pairs: list[Pair]  # every pair, most similar first
    instructor: list[Pair]  # each submission against the solutions, most similar first
    unsaved: list[str] = field(default_factory=list)  # submissions without a written.json

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.flagged]

    @property
    def copied(self) -> list[Pair]:
        return [p for p in self.instructor if p.flagged]


def _pair(a: str, b: str, pa: dict, pb: dict, key: Key, only_a: bool = False) -> Pair:
    """a against b; only_a: over a's items only (b holds every solution, a student may write a few)."""
    matches, shared, union = [], 0, 0
    for item in key.functions + key.answers:
        x, y = pa.get(item, _NONE), pb.get(item, _NONE)
        if (only_a and not x) or not (x or y):
            continue
        common = len(x & y)
        every = len(x) + len(y) - common
        if item not in key.answers:
            shared, union = shared + common, union + every
        if common and common >= THRESHOLD * every:
            matches.append(Match(item, common / every, common))
    return Pair(a, b, shared / union if union else 0.0, shared, matches)


def compare(prints: dict[str, dict[str, set[int]]], key: Key, unsaved=()) -> Report:
    """Every pair of submissions, and each against the instructor's solutions."""
    names = sorted(prints)
    pairs = [_pair(a, b, prints[a], prints[b], key) for a, b in itertools.combinations(names, 2)]
    solved = [_pair(n, "the instructor", prints[n], key.solutions, key, only_a=True) for n in names]
    order = lambda p: (-p.flagged, -p.top, p.a, p.b)  # noqa: E731
    return Report(names, key, sorted(pairs, key=order), sorted(solved, key=order), sorted(unsaved))


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def report(out_dir: Path, results: list[Result], instructor: Instructor) -> Report:
    """The Report of the submissions graded into out_dir (their written.json and answers); the last one
    is kept while its inputs stay the same, since grades.md is rewritten at each hand mark."""
    root = Path(instructor.root)
    inputs = (str(root), tuple(a.template for a in instructor.answers),
              tuple((p.as_posix(), _stamp(p)) for p in sorted((root / "pose_utils").rglob("*.py"))),
              tuple((r.name, _stamp(Path(out_dir) / r.name / WRITTEN),
                     tuple((g, a.text) for g, a in sorted(r.answers.items()))) for r in results))
    if _last.get("inputs") != inputs:
        _last.update(inputs=inputs, report=_report(out_dir, results, instructor))
    return _last["report"]


_last: dict = {}  # the last report and what it was made from


def _report(out_dir: Path, results: list[Result], instructor: Instructor) -> Report:
    key = course_key(instructor.root, instructor.answers)
    prints, unsaved = {}, []
    for r in results:
        try:
            written = json.loads((Path(out_dir) / r.name / WRITTEN).read_text(encoding="utf-8"))["functions"]
            written = written if isinstance(written, dict) else {}
        except (OSError, ValueError, KeyError, TypeError):
            written = {}
            unsaved.append(r.name)
        prints[r.name] = submission_prints(written, {g: a.text for g, a in r.answers.items()}, key)
    return compare(prints, key, unsaved)


# ----------------------------------------------------------------------------- what people read


def _short(item: str) -> str:
    return item if item.startswith("answer ") else item.split(":", 1)[1]


def _line(p: Pair) -> str:
    found = ", ".join(f"{_short(m.item)} {m.score:.2f} ({m.shared} shared)" for m in p.matches)
    return f"{p.a} ~ {p.b}: all code {p.code:.2f} ({p.shared} shared)" + (f"; {found}" if found else "")


def grades_section(out_dir: Path, results: list[Result], instructor: Instructor) -> list[str]:
    """The "## Similarity" lines of grades.md: the pairs at or above THRESHOLD, the instructor's matches."""
    rep = report(out_dir, results, instructor)
    lines = ["## Similarity", ""]
    for label, found in (("pair", rep.flagged), ("match with the instructor's solutions", rep.copied)):
        if not found:
            lines.append(f"- no {label} at or above {THRESHOLD}")
        lines += [f"- {_line(p)}" for p in found[:SHOWN]]
        if len(found) > SHOWN:
            lines.append(f"- and {len(found) - SHOWN} more in {REPORT}")
    return lines + [f"({REPORT} says how these are measured and lists the closest pairs.)", ""]


def markdown(rep: Report) -> str:
    """similarity.md: the settings, every flagged pair and instructor match, the closest other pairs."""
    lines = ["# Similarity of the submissions", "",
             f"{len(rep.names)} submissions; {len(rep.key.functions)} exercise functions and "
             f"{len(rep.key.answers)} written answers compared, the template removed (pose_course/instructor/"
             f"grading/similarity.py). Code: {K_CODE}-grams of normalised tokens; prose: {K_PROSE}-grams of "
             f"words; winnowed over windows of {W_CODE} and {W_PROSE}. Score: Jaccard index of fingerprint "
             f"sets; listed at {THRESHOLD} or more with at least {MIN_SHARED} fingerprints in common. A "
             "match is a reason to read both submissions, not a verdict.", ""]
    sections = (("Pairs at or above the threshold", rep.flagged),
                ("Matches with the instructor's solutions", rep.copied),
                ("The closest other pairs", [p for p in rep.pairs if not p.flagged][:SHOWN]))
    for title, found in sections:
        lines += [f"## {title}", ""] + ([f"- {_line(p)}" for p in found] or ["- none"]) + [""]
    if rep.unsaved:
        lines += ["## Not compared", "", "No written.json (not staged, or graded before this report "
                  "existed), so only their answers count: " + ", ".join(rep.unsaved) + ".", ""]
    return "\n".join(lines)


def write_report(out_dir: Path, results: list[Result], instructor: Instructor) -> Path:
    """OUT/similarity.md of the submissions graded into out_dir."""
    path = Path(out_dir) / REPORT
    with atomic_path(path) as tmp:
        tmp.write_text(markdown(report(out_dir, results, instructor)), encoding="utf-8")
    return path
