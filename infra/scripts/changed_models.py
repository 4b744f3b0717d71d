"""Print, as a JSON list, the model names of the declared recipes given (infra/models/<name>.yaml)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import PurePosixPath

MODEL_FILE = re.compile(r"^infra/models/([A-Za-z0-9][A-Za-z0-9_.-]*)\.yaml$")


def model_names(paths: list[str]) -> list[str]:
    """Sorted, unique model names of the paths that are model recipes; other paths are ignored."""
    names = set()
    for path in paths:
        match = MODEL_FILE.match(PurePosixPath(path).as_posix())
        if match:
            names.add(match.group(1))
    return sorted(names)


if __name__ == "__main__":
    print(json.dumps(model_names(sys.argv[1:])))
