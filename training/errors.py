"""The training package's errors: every one a ``LulcError`` whose message names the file, field or model."""

from __future__ import annotations

from lulc.errors import LulcError


class TrainingError(LulcError):
    """Base of every error ``lulc train`` and ``lulc assess`` raise on purpose."""


class ConfigError(TrainingError):
    """The training recipe (flags or ``training.yaml``) is incomplete or contradictory."""


class PointsError(TrainingError):
    """The labelled points cannot be used: missing file or field, no CRS, unknown labels, too few."""


class ImageryError(TrainingError):
    """The imagery cannot serve the recipe: missing bands, unknown radiometry, no items, no overlap."""


class ParityError(TrainingError):
    """The exported ONNX model does not reproduce the scikit-learn model's labels."""


class GateError(TrainingError):
    """The promotion gate refused the candidate model (it is worse than the deployed one)."""


class AssessError(TrainingError):
    """A map accuracy assessment cannot be made (map unreadable, no usable validation points)."""
