"""Training and map assessment from Python (a notebook): the objects the CLI uses, results a notebook shows.

    from training.api import train, assess
    run = train(image="s2image.tif", bands=["blue", "green", "red", "nir"], points="samples.shp",
                label_field="labels", models=["svm", "rf", "dt"], out="models/tutorial")
    run.leaderboard          # a pandas DataFrame: hold-out and repeated CV accuracy per model
    run.confusion_matrix     # reference x predicted counts of the kept model's hold-out
    run.figure()             # the confusion matrix as a matplotlib figure

Bad input raises the same ``LulcError`` subclasses, with the same one-line messages, as ``lulc train``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lulc.contract import ModelContract
from lulc.progress import NoteKeeper, Progress


@dataclass(frozen=True)
class TrainingRun:
    """A finished training run: the model directory, its contract and its metrics."""

    out: Path
    contract: ModelContract
    metrics: dict[str, Any]
    notes: tuple[str, ...] = ()
    """What ``lulc train`` prints beside its bars: points dropped and why, classes left out, choices made."""

    def __fspath__(self) -> str:
        """The model directory: ``classify(run, ...)`` takes the run itself (notebook review)."""
        return str(self.out)

    @property
    def model_dir(self) -> Path:
        """The model directory (``model.onnx``, ``model.json``, ``metrics.json``, ``report.md``)."""
        return self.out

    @property
    def leaderboard(self) -> Any:
        """Every model compared: hold-out overall accuracy and macro F1, repeated CV mean and sd."""
        import pandas as pd

        rows = []
        for entry in self.metrics["leaderboard"]:
            cv = entry.get("cv") or {}
            rows.append(
                {
                    "model": entry["model"],
                    "holdout_accuracy": entry["holdout_overall_accuracy"],
                    "holdout_macro_f1": entry["holdout_macro_f1"],
                    "cv_accuracy_mean": (cv.get("overall_accuracy") or {}).get("mean"),
                    "cv_accuracy_sd": (cv.get("overall_accuracy") or {}).get("sd"),
                    "kept": entry["model"] == self.metrics["model"]["type"],
                }
            )
        return pd.DataFrame(rows).set_index("model")

    @property
    def confusion_matrix(self) -> Any:
        """The kept model's hold-out confusion matrix: rows reference, columns predicted (class names)."""
        import pandas as pd

        matrix = self.metrics["holdout"]["confusion_matrix"]
        return pd.DataFrame(matrix["counts"], index=matrix["names"], columns=matrix["names"])

    @property
    def per_class(self) -> Any:
        """Producer's and user's accuracy and F1 per class on the hold-out."""
        import pandas as pd

        return pd.DataFrame(self.metrics["holdout"]["per_class"]).set_index("name")

    def figure(self) -> Any:
        """The hold-out confusion matrix as a matplotlib ``Figure`` (a notebook shows it; no pyplot state)."""
        from matplotlib.figure import Figure

        matrix = self.confusion_matrix
        figure = Figure(figsize=(1.2 * len(matrix) + 2, 1.0 * len(matrix) + 1.5))
        axes = figure.subplots()
        axes.imshow(matrix.to_numpy(), cmap="Blues")
        axes.set_xticks(range(len(matrix)), matrix.columns, rotation=45, ha="right")
        axes.set_yticks(range(len(matrix)), matrix.index)
        axes.set_xlabel("predicted")
        axes.set_ylabel("reference")
        for (row, col), value in zip(
            [(r, c) for r in range(len(matrix)) for c in range(len(matrix))],
            matrix.to_numpy().ravel(),
            strict=True,
        ):
            axes.text(col, row, str(value), ha="center", va="center")
        axes.set_title(f"{self.metrics['model']['type']} hold-out ({self.metrics['holdout']['n']} samples)")
        figure.tight_layout()
        return figure


def train(
    config: str | Path | None = None, *, progress: Progress | None = None, **options: Any
) -> TrainingRun:
    """Train as ``lulc train`` does: a recipe file and/or its keys as keyword arguments (keywords win).

    Keywords are the recipe's keys (``image``, ``bands``, ``points``, ``label_field``, ``classes``,
    ``models``, ``seed``, ``cv={"repeats": 20, "scheme": "shuffle"}``, ``out``, ...); paths may be
    ``Path`` objects.

    Raises:
        TrainingError: (a ``LulcError``) bad input, with the message ``lulc train`` prints.
    """
    from lulc.aoi import geojson_aoi
    from lulc.settings_types import load_settings
    from training.config import load_config, make_config
    from training.pipeline import train as run_pipeline
    from training.settings import TrainingSettings

    overrides = {key: str(value) if isinstance(value, Path) else value for key, value in options.items()}
    aoi = overrides.get("aoi")
    if aoi is not None and not isinstance(aoi, str | list):  # a geometry, a frame, a tuple: as classify takes
        overrides["aoi"] = geojson_aoi(aoi)  # them (notebook review: train refused a shapely polygon)
    given_by = "the keyword arguments"
    recipe = (
        load_config(config, overrides, given_by=given_by)
        if config is not None
        else make_config({}, overrides, "keyword arguments", given_by=given_by)
    )
    keeper = NoteKeeper(progress)
    result = run_pipeline(recipe, load_settings(TrainingSettings), keeper)
    return TrainingRun(result.out, result.contract, result.metrics, tuple(keeper.notes))


@dataclass(frozen=True)
class Assessment:
    """A map's accuracy and class areas against independent validation points (Olofsson et al. 2014)."""

    result: dict[str, Any]

    @property
    def overall_accuracy(self) -> float:
        """Area-weighted overall accuracy."""
        return float(self.result["overall_accuracy"])

    @property
    def table(self) -> Any:
        """Per class: user's and producer's accuracy with standard errors, mapped and estimated areas."""
        import pandas as pd

        return pd.DataFrame(self.result["classes"]).set_index("name")

    def __str__(self) -> str:
        from training.assess import render_assessment

        return render_assessment(self.result)


def assess(
    map_path: str | os.PathLike[str],
    points: str | Path,
    label_field: str = "label",
    classes: str | Path | None = None,
    points_crs: str | None = None,
) -> Assessment:
    """Assess a map as ``lulc assess`` does; raises the same ``AssessError`` messages."""
    from training.assess import assess_map

    return Assessment(assess_map(os.fspath(map_path), points, label_field, classes, points_crs))
