"""ONNX Runtime, imported with its telemetry off.

onnxruntime 1.32's Linux wheels record a device id and a ``ProcessInfo`` event (OS, CPU, container, the
virtual environment's path) under ``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` at the first session,
for upload; ``disable_telemetry_events()`` comes too late for that. ``ORT_DISABLE_TELEMETRY=1``, set before
the runtime starts, stops it (measured: no file written). A user who sets the variable keeps their value.
"""

from __future__ import annotations

import os
from types import ModuleType

from lulc.signals import raise_wrapped_signal

TELEMETRY_VARIABLE = "ORT_DISABLE_TELEMETRY"


def onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, its telemetry off unless the environment says otherwise."""
    os.environ.setdefault(TELEMETRY_VARIABLE, "1")
    try:
        import onnxruntime as ort
    except ImportError as exc:  # a Ctrl-C during the import comes out as pybind11's ImportError
        raise_wrapped_signal(exc)
        raise
    return ort
