"""Fixtures of the training tests: the tutorial data, a demo world, recipes and trained model directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml

from training.config import TrainingConfig, load_config

TUTORIAL_CLASSES = """classes:
  - {value: 1, name: Water, color: "#1f78b4"}
  - {value: 2, name: Dense Veg, color: "#33a02c"}
  - {value: 3, name: Veg, color: "#b2df8a"}
  - {value: 4, name: Impervious, color: "#e31a1c"}
"""


@pytest.fixture(scope="session")
def tutorial(lulc_py: Path) -> Path:
    """The tutorial's real data (root fixture ``lulc_py``; skips where it is absent)."""
    return lulc_py


@pytest.fixture(scope="session")
def tutorial_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's class names as a class-table file."""
    path = tmp_path_factory.mktemp("tutorial") / "classes.yaml"
    path.write_text(TUTORIAL_CLASSES)
    return path


@pytest.fixture(scope="session")
def world(demo_world: Any) -> Path:
    """The root of the session's demo world (root fixture ``demo_world``)."""
    return Path(demo_world)


def tutorial_recipe(tutorial: Path, out: Path, classes: Path | None = None, **changes: Any) -> TrainingConfig:
    """The tutorial's recipe: its image, 4 bands, its 121 points, the class table if given; ``changes``."""
    from training.config import make_config

    recipe: dict[str, Any] = {
        "image": str(tutorial / "s2image.tif"),
        "bands": ["blue", "green", "red", "nir"],
        "points": str(tutorial / "samples.shp"),
        "label_field": "labels",
        "out": str(out),
    }
    if classes is not None:
        recipe["classes"] = str(classes)
    return make_config({**recipe, **changes})


def lean_recipe(world: Path, **changes: Any) -> TrainingConfig:
    """The demo world's own training.yaml, made lean for tests: one fast random forest, few splits."""
    lean: dict[str, Any] = {
        "models": ["rf"],
        "model_params": {"rf": {"n_estimators": 60}},
        "cv": {"folds": 3, "repeats": 1},
    }
    lean.update(changes)
    return load_config(world / "training.yaml", lean)


@pytest.fixture(scope="session")
def static_model(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained from the demo world's static catalog (lean recipe)."""
    from training.pipeline import train

    out = tmp_path_factory.mktemp("static") / "model"
    train(lean_recipe(world, out=str(out)))
    return out


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as YAML and return the path."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def local_dn_image(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-band uint16 DN GeoTIFF (blue, green, red, nir) cut from the clearest demo acquisition."""
    cogs = world / "cogs"
    item = sorted(cogs.iterdir())[1]
    arrays = []
    for band in ("blue", "green", "red", "nir"):
        with rasterio.open(item / f"{band}.tif") as src:
            arrays.append(src.read(1))
            profile = src.profile
    path = tmp_path_factory.mktemp("local") / "scene.tif"
    profile.update(count=4, driver="GTiff", tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.stack(arrays))
    return path


def squares(lulc_py: Path) -> list[tuple[object, int]]:
    """3 x 3 pixel squares (of valid pixels) around the tutorial's 121 points, in the image's CRS."""
    import geopandas as gpd
    from shapely.geometry import box

    with rasterio.open(lulc_py / "s2image.tif") as src:
        t = src.transform
    points = gpd.read_file(lulc_py / "samples.shp")
    rows: list[tuple[object, int]] = []
    for geometry, label in zip(points.geometry, points["labels"], strict=True):
        col, row = ~t @ (geometry.x, geometry.y)
        c0, r0 = np.floor(col) - 1, np.floor(row) - 1
        rows.append((box(*(t @ (c0 + 0.1, r0 + 2.9)), *(t @ (c0 + 2.9, r0 + 0.1))), int(label)))
    return rows


def write_polygons(path: Path, rows: list[tuple[object, int]], lulc_py: Path) -> Path:
    """Write (polygon, label) rows in the tutorial points' CRS to ``path`` (a field ``labels``)."""
    import geopandas as gpd

    crs = gpd.read_file(lulc_py / "samples.shp").crs
    gpd.GeoDataFrame({"labels": [v for _, v in rows]}, geometry=[g for g, _ in rows], crs=crs).to_file(path)
    return path
