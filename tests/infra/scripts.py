"""Import the infra scripts (infra/scripts/*.py, not a package) as modules for the tests."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.infra.conftest import INFRA


def load_script(name: str) -> ModuleType:
    """The module ``infra/scripts/<name>.py``, imported once."""
    key = f"lulc_infra_scripts.{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, INFRA / "scripts" / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import infra/scripts/{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module
