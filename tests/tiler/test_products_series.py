"""Products, series and input imagery of real runs over HTTP.

Products as layers of their run, the class-area series, the backdrop of an ``--image`` run, titles naming
model and date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
import shapely.geometry
from rasterio.features import geometry_mask
from rasterio.warp import transform_geom

from lulc.classes import NODATA
from tests.support.stac_validation import assert_valid_stac_file
from tests.tiler.conftest import ProductRuns, decode_png, get, post


def _runs(url: str) -> dict[str, dict[str, Any]]:
    response = get(f"{url}/runs")
    assert response.status_code == 200, response.text
    return {run["id"]: run for run in response.json()}


def test_products_are_layers_of_their_run_not_runs_of_their_own(
    product_tiler: str, product_runs: ProductRuns
) -> None:
    runs = _runs(product_tiler)
    assert {"yearly/2021", "yearly/2023", "yearly/2024"} <= set(runs)
    assert not [run_id for run_id in runs if run_id.endswith(("/clean", "/change"))], sorted(runs)
    later = runs["yearly/2024"]
    kinds = [layer["kind"] for layer in later["layers"]]
    classes = len(product_runs.table.classes)
    assert kinds == ["classes", "clean", "change"] + ["probability"] * classes
    clean, change = later["layers"][1], later["layers"][2]
    assert clean["title"] == "Cleaned: minimum mapping unit 0.5 ha"
    assert Path(clean["url"]) == product_runs.series / "2024" / "clean" / "classes.tif"
    assert Path(change["url"]) == product_runs.change / "change.tif"
    assert change["title"] == "Change: 2021-07-18 to 2021-09-06 → 2024-08-10"  # the two runs' acquisitions
    # the change map is a layer of both runs it compares; 2023 has no change layer
    assert [layer["kind"] for layer in runs["yearly/2021"]["layers"]][:3] == ["classes", "clean", "change"]
    assert "change" not in [layer["kind"] for layer in runs["yearly/2023"]["layers"]]
    names = [layer["title"] for layer in later["layers"] if layer["kind"] == "probability"]
    assert names == [f"Probability: {c.name}" for c in product_runs.table.classes]
    assert_valid_stac_file(product_runs.change / "item.json")


def test_the_change_layer_has_its_own_legend_and_colours(
    product_tiler: str, product_runs: ProductRuns
) -> None:
    change = str(product_runs.change / "change.tif")
    legend = get(f"{product_tiler}/legend", params={"url": change}).json()
    with rasterio.open(change) as src:
        colours = {v: rgba[:3] for v, rgba in src.colormap(1).items()}
        data = src.read(1)
        tags = src.tags(1)
    names = {entry["value"]: entry["name"] for entry in legend["classes"]}
    assert names == {int(k[6:]): v for k, v in tags.items() if k.startswith("CLASS_")}  # every from-to pair
    assert len(names) == len(product_runs.table.classes) ** 2
    assert {names[v] for v in np.unique(data) if v != NODATA} - {
        f"{c.name} unchanged" for c in product_runs.table.classes
    }
    preview = get(
        f"{product_tiler}/cog/preview.png", params={"url": change, "max_size": 256}, timeout=120
    ).content
    rgba = decode_png(preview)
    shown = {tuple(int(c) for c in px) for px in rgba[rgba[..., 3] > 0][:, :3]}
    table = {tuple(colour) for colour in colours.values()}
    assert shown <= table
    class_colours = {c.rgba[:3] for c in product_runs.table.classes}
    assert shown - class_colours, "the change map is drawn in its own colour table, not the class colours"


def _polygon(bbox: list[float]) -> dict[str, Any]:
    w, s, e, n = bbox[0] - 0.01, bbox[1] - 0.01, bbox[2] + 0.01, bbox[3] + 0.01
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def test_statistics_series_gives_the_class_areas_of_every_period(
    product_tiler: str, product_runs: ProductRuns
) -> None:
    runs = _runs(product_tiler)
    series = runs["yearly/2023"]["series"]
    assert Path(series["url"]) == product_runs.series / "collection.json"
    assert series["every"] == "year"
    assert [(p["period"], p["run"]) for p in series["periods"]] == [
        ("2021", "yearly/2021"),
        ("2023", "yearly/2023"),
        ("2024", "yearly/2024"),
    ]
    response = post(
        f"{product_tiler}/statistics/series",
        params={"url": series["url"]},
        json=_polygon(runs["yearly/2023"]["bbox"]),
        timeout=180,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["period"] for p in body["periods"]] == ["2021", "2023", "2024"]
    # review: nodata off the polygon AOI (the bounding box's corners) was a "No data" gap in the web map; the
    # AOI is the union of the periods' footprints (each leaves out what its imagery missed: a gap)
    footprints = [
        shapely.geometry.shape(
            json.loads((product_runs.series / p["period"] / "item.json").read_text())["geometry"]
        )
        for p in body["periods"]
    ]
    aoi = shapely.geometry.mapping(shapely.union_all(footprints))
    for period in body["periods"]:
        with rasterio.open(product_runs.series / period["period"] / "classes.tif") as src:
            data = src.read(1)
            on_aoi = ~geometry_mask([transform_geom("EPSG:4326", src.crs, aoi)], data.shape, src.transform)
        counts = {row["value"]: row["pixels"] for row in period["statistics"]["classes"]}
        assert counts == {c.value: int((data == c.value).sum()) for c in product_runs.table.classes}
        gaps = int(((data == 255) & on_aoi).sum())
        assert period["statistics"]["nodata_pixels"] == gaps < int((data == 255).sum())
    assert body["periods"][0]["statistics"]["classes"] != body["periods"][2]["statistics"]["classes"]
    # not a collection, or a collection off the allow-list
    item = str(product_runs.series / "2021" / "item.json")
    polygon = _polygon(runs["yearly/2023"]["bbox"])
    assert post(f"{product_tiler}/statistics/series", params={"url": item}, json=polygon).status_code == 404
    assert (
        post(f"{product_tiler}/statistics/series", params={"url": "/etc/hosts"}, json=polygon).status_code
        == 403
    )


def test_an_image_run_has_its_input_as_backdrop_and_a_title_with_model_and_date(
    product_tiler: str, product_runs: ProductRuns
) -> None:
    if product_runs.tutorial is None or product_runs.image is None:
        pytest.skip("tutorial data not found (../shared/data/lulc_py next to the repository)")
    run = _runs(product_tiler)["tutorial"]
    assert run["title"] == "Land cover from test-model 1, 2023-05-01"
    assert run["date"] == "2023-05-01"
    backdrop = run["backdrop"]
    assert backdrop is not None
    assert backdrop["endpoint"] == "cog"
    assert Path(backdrop["url"]) == product_runs.image
    assert [layer["name"] for layer in backdrop["layers"]] == ["true_color", "false_color"]
    true_colour = backdrop["layers"][0]
    assert true_colour["assets"] == ["3", "2", "1"]  # red, green, blue band indexes of the scene
    # the tiles the web map asks for: the scene's own bands, stretched 0-0.3 reflectance (independent check)
    with rasterio.open(product_runs.image) as src:
        bands = src.read([3, 2, 1])
        width, height = src.width, src.height
    query = f"url={product_runs.image}&{true_colour['query']}&max_size={max(width, height)}"
    response = get(f"{product_tiler}/cog/preview.png?{query}", timeout=120)
    assert response.status_code == 200, response.text
    rendered = decode_png(response.content)
    assert rendered.shape[:2] == (height, width)
    valid = np.isfinite(bands).all(axis=0) & (bands < 1e30).all(axis=0)
    expected = np.clip(np.nan_to_num(bands) / 0.3 * 255, 0, 255)
    got = np.moveaxis(rendered[..., :3], -1, 0).astype(float)
    assert np.abs(got[:, valid] - expected[:, valid]).max() <= 1.0
    assert (rendered[..., 3][~valid] == 0).all()  # the scene's nodata slivers stay transparent
    assert got[:, valid].std() > 10  # control: an image, not a flat colour


def test_a_product_whose_run_is_elsewhere_is_a_run_of_its_own(
    product_runs: ProductRuns, tmp_path: Path
) -> None:
    import shutil

    from tiler.allowlist import AllowList
    from tiler.runs import find_runs

    copy = tmp_path / "alone"
    shutil.copytree(product_runs.series / "2024" / "clean", copy)
    (run,) = find_runs(tmp_path, AllowList.from_prefixes([str(tmp_path)]).check)
    assert run.id == "alone"
    assert [layer.kind for layer in run.layers] == ["clean"]
    assert run.title.startswith("Land cover, minimum mapping unit 0.5 ha")
    item = json.loads((copy / "item.json").read_text())
    assert item["properties"]["lulc:product"] == "clean"


def test_layers_keep_their_order_whatever_the_folder_names(product_runs: ProductRuns, tmp_path: Path) -> None:
    import shutil

    from tiler.allowlist import AllowList
    from tiler.runs import find_runs

    copy = tmp_path / "yearly"
    shutil.copytree(product_runs.series, copy)
    (copy / "change").rename(copy / "0-change")  # now found before the runs and their cleaned maps
    runs = {run.id: run for run in find_runs(tmp_path, AllowList.from_prefixes([str(tmp_path)]).check)}
    kinds = [layer.kind for layer in runs["yearly/2024"].layers]
    assert kinds[:3] == ["classes", "clean", "change"]
    assert set(kinds[3:]) == {"probability"}
    assert "yearly/0-change" not in runs
