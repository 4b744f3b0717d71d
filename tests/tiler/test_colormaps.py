"""Named class colormaps registered per model at start-up, served by name and listed by /colorMaps."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lulc.contract import Features, Inputs, ModelContract, Outputs, Provenance, to_mlm_item
from tests.support.serve import BackgroundServer
from tests.tiler.conftest import Runs, World, get
from tiler.allowlist import AllowList
from tiler.app import create_app
from tiler.colormaps import ClassResolver, colormap_name, named_class_tables
from tiler.settings import TilerSettings


def _contract(world: World, name: str) -> ModelContract:
    return ModelContract(
        name=name,
        version="1",
        inputs=Inputs(bands=["blue", "green", "red", "nir"], resolution=10),
        features=Features(indices=["ndvi"]),
        classes=world.table,
        outputs=Outputs(class_order=world.table.values),
        provenance=Provenance(model_type="RandomForestClassifier", bbox=[140.0, 36.0, 140.1, 36.1]),
    )


def test_models_dir_registers_one_colormap_per_model(tiler_world: World, tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "a").mkdir(parents=True)
    (models / "b").mkdir()
    contract = _contract(tiler_world, "Kanto RF")
    item = to_mlm_item(contract, "model.onnx", "1220", "2024-01-01T00:00:00Z")
    (models / "a" / "model.json").write_text(json.dumps(item))
    (models / "b" / "contract.json").write_text(_contract(tiler_world, "svm").to_json())
    (models / "a" / "metrics.json").write_text('{"accuracy": 0.9}')  # not a contract: skipped
    tables = named_class_tables(models, [])
    assert set(tables) == {"lulc_kanto_rf", "lulc_svm"}
    assert tables[colormap_name("Kanto RF")] == tiler_world.table

    with BackgroundServer(create_app(TilerSettings(allow=[str(tmp_path)], models_dir=models))) as server:
        assert get(f"{server.url}/healthz").json()["class_colormaps"] == ["lulc_kanto_rf", "lulc_svm"]
        served = get(f"{server.url}/colorMaps/lulc_kanto_rf").json()
    for entry in tiler_world.table.classes:
        assert tuple(served[str(entry.value)]) == entry.rgba
    assert tuple(served["255"]) == (0, 0, 0, 0), "nodata is transparent"


def test_the_tile_path_answers_class_colours_from_the_cache_and_sees_a_rewritten_item(
    tiler_runs: Runs, tmp_path: Path
) -> None:
    """``from_item_cached`` (the event-loop path of every tile) never reads; a rewritten item is a miss."""
    run = tmp_path / "run"
    shutil.copytree(tiler_runs.main, run)
    resolver = ClassResolver(allowed=AllowList.from_prefixes([str(tmp_path)]).check)
    location = str(run / "classes.tif")
    assert resolver.from_item_cached(location) == (False, None)
    found = resolver.from_item(location)
    assert found is not None
    assert resolver.from_item_cached(location) == (True, found)
    item_path = run / "item.json"
    item = json.loads(item_path.read_text())
    classes = item["assets"]["classes"]["classification:classes"]
    classes[0]["color_hint"] = "123456"
    item_path.write_text(json.dumps(item))
    os.utime(item_path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    assert resolver.from_item_cached(location) == (False, None)
    reread = resolver.from_item(location)
    assert reread is not None
    assert reread.table.classes[0].rgba[:3] == (0x12, 0x34, 0x56)
    # Off the allow-list: answered at once, with no classes.
    assert ClassResolver(allowed=AllowList.from_prefixes([str(tmp_path / "x")]).check).from_item_cached(
        location
    ) == (True, None)


def test_class_names_read_from_classification_v2_and_older_items() -> None:
    """v2 items (ours since the move to v2) carry the human name as ``title``; older ones in ``name``."""
    from lulc.classes import ClassTable
    from tiler.colormaps import classes_from_item

    table = ClassTable.model_validate(
        {
            "classes": [
                {"value": 1, "name": "Open water", "color": "#1f78b4"},
                {"value": 4, "name": "Bare soil", "color": "#e31a1c"},
            ]
        }
    )
    v2 = {
        "properties": {},
        "assets": {"classes": {"href": "./classes.tif", "classification:classes": table.to_stac()}},
    }
    assert [c["name"] for c in table.to_stac()] == ["open-water", "bare-soil"]
    v1_rows = [
        {"value": 1, "name": "Open water", "color_hint": "1F78B4"},
        {"value": 4, "name": "Bare soil", "color_hint": "E31A1C"},
    ]
    v1 = {"properties": {"classification:classes": v1_rows}, "assets": {}}
    for item in (v2, v1):
        found = classes_from_item(item, "classes.tif")
        assert found is not None
        assert found.names == ["Open water", "Bare soil"]
        assert found.colormap() == table.colormap()


def test_a_map_without_its_item_is_named_by_its_band_tags(tmp_path: Path) -> None:
    """HTTP review: a classes.tif copied alone got "class 1" ... for the names its CLASS_<value> tags hold."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from tiler.colormaps import classes_from_colortable

    def write(path: Path, tags: dict[str, str]) -> str:
        profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "uint8", "nodata": 255}
        with rasterio.open(
            path, "w", **profile, crs="EPSG:32654", transform=from_origin(400000, 4000000, 10, 10)
        ) as dst:
            dst.write(np.array([[1, 2] * 2] * 4, dtype=np.uint8), 1)
            dst.write_colormap(1, {1: (0, 0, 255, 255), 2: (0, 128, 0, 255)})
            dst.update_tags(1, **tags)
        return str(path)

    named = classes_from_colortable(write(tmp_path / "named.tif", {"CLASS_1": "Water", "CLASS_2": "Forest"}))
    assert named is not None
    assert [(c.value, c.name, c.color) for c in named.classes] == [
        (1, "Water", "#0000ff"),
        (2, "Forest", "#008000"),
    ]
    bare = classes_from_colortable(write(tmp_path / "bare.tif", {}))  # the colour table alone
    assert bare is not None
    assert [(c.value, c.name) for c in bare.classes] == [(1, "class 1"), (2, "class 2")]
