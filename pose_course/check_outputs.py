"""How a check cell's output is compared with the stored one: the text exactly, the numbers in it within
a tolerance, so that a grade never flips on the last digit a thread count or oneDNN changes.

A check cell may set its tolerance on a line of its own, `# CHECK_TOLERANCE rtol=1e-4 atol=1e-9`
(default: rtol 1e-6, atol 1e-9). Two outputs match when nbval finds them equal, or when the text around
their numbers is equal and each pair of numbers satisfies |a - b| <= max(rtol * max(|a|, |b|), atol).

`install(IPyNbCell)` makes nbval compare this way and keep what it compared on the cell item when the
texts differ (`item.compared_outputs`: the expected and the produced outputs as {key: [values]}).
notebooks/conftest.py installs it for `make check` and `make test`; the grader copies this file's text
into the sandbox and its plugin installs it there, so both sides grade alike. Standard library only
(the grader's copy cannot import pose_utils: inside the sandbox that is the student's package).
"""

from __future__ import annotations

import math
import re

TOLERANCE_MARK = "CHECK_TOLERANCE"
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\w|\.\d)")
_SETTING = re.compile(r"^(rtol|atol)=(\S+)$")


def tolerance(source: str) -> tuple[float, float]:
    """(rtol, atol) of a check cell: its `# CHECK_TOLERANCE rtol=.. atol=..` line, else the defaults.
    Raises ValueError on a malformed line (grading.answer_key reports it as the notebook's)."""
    rtol, atol = DEFAULT_RTOL, DEFAULT_ATOL
    for line in source.splitlines():
        words = line.strip().lstrip("#").split()
        if not line.strip().startswith("#") or not words or words[0] != TOLERANCE_MARK:
            continue
        for word in words[1:]:
            match = _SETTING.match(word)
            try:
                value = float(match.group(2)) if match else float("nan")
            except ValueError:
                value = float("nan")
            if not match or not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{line.strip()!r}: expected '# {TOLERANCE_MARK} rtol=R atol=A' with "
                                 "numbers >= 0")
            if match.group(1) == "rtol":
                rtol = value
            else:
                atol = value
    return rtol, atol


def texts_match(expected: str, got: str, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
    """Whether two printed texts are equal but for their numbers, which agree within the tolerance."""
    if expected == got:
        return True
    words_e, words_g = _NUMBER.split(expected), _NUMBER.split(got)
    if words_e != words_g:
        return False
    for a, b in zip(_NUMBER.findall(expected), _NUMBER.findall(got), strict=True):
        x, y = float(a), float(b)
        if not abs(x - y) <= max(rtol * max(abs(x), abs(y)), atol):
            return False
    return True


def flatten(outputs, skip_compare, sanitize=lambda s: s) -> dict:
    """nbval's view of a cell's outputs: {key: [values]} for every output key and data mimetype it
    compares (streams under their name), in order."""
    from nbval.plugin import transform_streams_for_comparison

    flat: dict = {}
    for output in transform_streams_for_comparison(outputs):
        for key in output.keys():
            if key in skip_compare:
                continue
            if key == "data":
                for mime, value in output[key].items():
                    if mime not in skip_compare:
                        flat.setdefault(mime, []).append(sanitize(value))
            else:
                flat.setdefault(key, []).append(sanitize(output[key]))
    return flat


def outputs_match(expected: dict, got: dict, rtol: float, atol: float) -> bool:
    """Two flattened outputs: the same keys, as many values each, each text pair `texts_match`."""
    if expected.keys() != got.keys():
        return False
    for key, values in expected.items():
        if len(values) != len(got[key]):
            return False
        for e, g in zip(values, got[key], strict=True):
            if isinstance(e, str) and isinstance(g, str):
                if not texts_match(e, g, rtol, atol):
                    return False
            elif e != g:
                return False
    return True


def as_text(flat: dict) -> str:
    """A flattened output as the student reads it: what it printed, then any other text outputs."""
    parts = ["".join(flat.get("stdout", []))]
    for key, values in flat.items():
        if key != "stdout":
            parts += [v if isinstance(v, str) else repr(v) for v in values]
    text = "\n".join(p.rstrip("\n") for p in parts if p)
    return text + "\n" if text else ""


def install(cell_class) -> None:
    """Make nbval's IPyNbCell compare with tolerance and keep what it compared (see the module doc)."""
    original = cell_class.compare_outputs
    if getattr(original, "tolerant", False):
        return

    def compare_outputs(self, test, ref, skip_compare=None):
        if original(self, test, ref, skip_compare):
            return True
        skip = skip_compare or self.parent.skip_compare
        expected, got = flatten(ref, skip, self.sanitize), flatten(test, skip, self.sanitize)
        self.compared_outputs = (expected, got)
        try:
            rtol, atol = tolerance(self.cell.get("source", ""))
        except ValueError as e:
            self.comparison_traceback.append(str(e))
            return False
        if outputs_match(expected, got, rtol, atol):
            self.comparison_traceback = []
            return True
        return False

    compare_outputs.tolerant = True
    cell_class.compare_outputs = compare_outputs
