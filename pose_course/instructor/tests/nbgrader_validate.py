"""Run with the Python of nbgrader's own environment (.venv-nbgrader, `make test` builds it), not ours:
`nbgrader validate`'s pipeline (nbgrader.validator.Validator) on each notebook named, without its last
step, which executes the notebook (minutes of training in the course's notebooks, past nbgrader's 30 s
cell limit). Prints JSON: nbgrader's version and, per notebook, its results (`{}` when it validates),
the grade cells it sees, or the error it raised."""

import json
import sys

import nbformat
import nbgrader
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput
from nbgrader.validator import Validator


def main(paths):
    validator = Validator()
    # nbgrader's own list but Execute (it is no configurable trait: set on the instance)
    validator.preprocessors = [CheckCellMetadata, ClearOutput]
    found = {}
    for path in paths:
        try:
            results = validator.validate(path)
        except Exception as e:  # nbgrader's SchemaTooOldError, ValidationError, ...
            found[path] = {"error": f"{type(e).__name__}: {e}"}
            continue
        cells = nbformat.read(path, as_version=4).cells
        grade_ids = [c.metadata["nbgrader"]["grade_id"] for c in cells
                     if c.metadata.get("nbgrader", {}).get("grade")]
        found[path] = {"results": results, "grade_ids": grade_ids}
    print(json.dumps({"version": nbgrader.__version__, "notebooks": found}))


if __name__ == "__main__":
    main(sys.argv[1:])
