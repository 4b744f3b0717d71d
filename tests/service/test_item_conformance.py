"""A classification's outputs as standards see them: STAC schemas, portable links, dates, QGIS's legend."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from lulc.classes import ClassTable, LandCoverClass
from lulc.cog import write_cog
from lulc.errors import InputError
from service.engine import ClassifyResult, classify
from service.readers import ImageReaderFactory
from service.request import ClassifyRequest
from service.runner import load_model
from tests.service.engine_support import export_onnx, fit_forest, make_contract
from tests.support.stac_validation import assert_valid_stac, stac_errors

BANDS = ("red", "nir", "swir16")
CLASSES = ClassTable.model_validate(
    {
        "classes": [
            {"value": 1, "name": "Open water", "color": "#1f78b4"},
            {"value": 2, "name": "Dense vegetation", "color": "#33a02c"},
            {"value": 5, "name": "Bare soil / rock", "color": "#e31a1c"},
        ]
    }
)
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-band uint16 image recording no date and a forest for it, in a model directory with its item."""
    folder = tmp_path_factory.mktemp("conformance")
    rng = np.random.default_rng(1)
    truth = np.repeat(np.repeat(rng.integers(0, 3, (4, 4)), 40, axis=0), 40, axis=1)
    means = np.array([[0.03, 0.02, 0.01], [0.05, 0.40, 0.20], [0.20, 0.25, 0.30]], dtype=np.float32)
    reflectance = means[truth].transpose(2, 0, 1) + rng.normal(0, 0.01, (3, 160, 160)).astype(np.float32)
    dn = np.clip(reflectance * 10000, 1, 65535).astype(np.uint16)
    dn[:, :20, :20] = 0
    image = write_cog(
        folder / "image.tif",
        dn,
        crs="EPSG:32633",
        transform=from_origin(500000, 5000000, 10, 10),
        nodata=0,
        band_descriptions=list(BANDS),
    )
    contract = make_contract(CLASSES, [1, 2, 5], bands=BANDS, scale=1e-4, name="conformance")
    x = np.concatenate([means[k] + rng.normal(0, 0.01, (30, 3)) for k in range(3)]).astype(np.float32)
    model_dir = folder / "models" / "conformance"
    model_dir.mkdir(parents=True)
    export_onnx(fit_forest(x, np.repeat([1, 2, 5], 30)), 3, contract, model_dir / "model.onnx")
    return {"image": image, "model": model_dir / "model.onnx", "folder": folder}


def run(
    inputs: dict[str, Path], out: Path, image: Path | None = None, when: str | None = "2024-06-01"
) -> ClassifyResult:
    request = ClassifyRequest(aoi=None, datetime=when, block_size=64)
    factory = ImageReaderFactory(image or inputs["image"])
    return classify(request, load_model(inputs["model"]), factory, out)


@pytest.fixture(scope="module")
def result(inputs: dict[str, Path]) -> ClassifyResult:
    return run(inputs, inputs["folder"] / "runs" / "map")


def test_the_map_item_validates_against_core_and_every_extension_it_declares(result: ClassifyResult) -> None:
    item = json.loads(result.item.read_text())
    assert_valid_stac(item, "item.json")
    props = item["properties"]
    assert props["proj:code"] == "EPSG:32633"
    assert "proj:epsg" not in props  # projection v2.0.0 has proj:code only
    # Control: the validator does see what the issue reported (a human name where v2 wants a machine one).
    broken = json.loads(result.item.read_text())
    broken["properties"]["classification:classes"][2]["name"] = "Bare soil / rock"
    broken["properties"]["proj:epsg"] = "32633"
    problems = stac_errors(broken)
    assert any("classification" in p and "name" in p for p in problems), problems
    assert any("projection" in p for p in problems), problems


def test_class_names_are_machine_names_and_titles_keep_the_human_ones(result: ClassifyResult) -> None:
    item = json.loads(result.item.read_text())
    for holder in (item["properties"], item["assets"]["classes"]):
        rows = holder["classification:classes"]
        assert [(r["value"], r["name"], r["title"]) for r in rows] == [
            (1, "open-water", "Open water"),
            (2, "dense-vegetation", "Dense vegetation"),
            (5, "bare-soil-rock", "Bare soil / rock"),
        ]
        again = ClassTable.from_stac(rows)  # read back with the human names
        assert (again.names, again.values, again.colormap()) == (
            CLASSES.names,
            CLASSES.values,
            CLASSES.colormap(),
        )
    # An older item (classification v1: the human name in `name`, no title) still reads.
    old = [{"value": 1, "name": "Open water", "color_hint": "1F78B4"}]
    assert ClassTable.from_stac(old).names == ["Open water"]


def test_derived_from_links_are_relative_and_lead_to_the_inputs(
    inputs: dict[str, Path], result: ClassifyResult
) -> None:
    item = json.loads(result.item.read_text())
    links = {link["title"]: link for link in item["links"] if link["rel"] == "derived_from"}
    assert set(links) == {"image", "model conformance 1"}
    for link in links.values():
        assert not os.path.isabs(link["href"]), link
        assert "://" not in link["href"], link
    folder = result.item.parent
    assert (folder / links["image"]["href"]).resolve() == inputs["image"].resolve()
    assert (folder / links["model conformance 1"]["href"]).resolve() == inputs["model"].resolve()
    assert links["image"]["type"].startswith("image/tiff")


def test_an_undated_image_needs_a_datetime_instead_of_1970(inputs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no acquisition date.*--datetime"):
        run(inputs, tmp_path / "undated", when=None)
    assert not (tmp_path / "undated" / "item.json").exists()
    # An instant is the item's datetime; a day or an interval is null + start/end, as STAC asks.
    instant = run(inputs, tmp_path / "instant", when="2024-06-01T10:30:00Z").item
    props = json.loads(instant.read_text())["properties"]
    assert props["datetime"] == "2024-06-01T10:30:00Z"
    assert "start_datetime" not in props
    day = json.loads(run(inputs, tmp_path / "day", when="2024-06-01").item.read_text())["properties"]
    assert day["datetime"] is None
    assert (day["start_datetime"], day["end_datetime"]) == ("2024-06-01T00:00:00Z", "2024-06-01T23:59:59Z")


def test_an_image_recording_its_date_needs_no_datetime(inputs: dict[str, Path], tmp_path: Path) -> None:
    dated = tmp_path / "dated.tif"
    shutil.copy(inputs["image"], dated)
    with rasterio.open(dated, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        dst.update_tags(TIFFTAG_DATETIME="2021:07:18 01:37:42")
    props = json.loads(run(inputs, tmp_path / "out", image=dated, when=None).item.read_text())["properties"]
    assert props["datetime"] == "2021-07-18T01:37:42Z"


def test_the_qgis_style_is_an_asset_written_with_the_map(result: ClassifyResult) -> None:
    item = json.loads(result.item.read_text())
    style = item["assets"]["classes_style"]
    assert style["href"] == "./classes.qml"
    assert "style" in style["roles"]
    assert style["type"] == "text/xml"
    from lulc.checksum import multihash_sha256

    assert style["file:checksum"] == multihash_sha256(result.item.parent / "classes.qml")
    assert not list(result.item.parent.glob(".*"))  # nothing half-written is left beside it


QGIS_LEGEND = textwrap.dedent(
    """
    import json, os, sys
    from qgis.core import QgsApplication, QgsRasterLayer

    app = QgsApplication([], False)
    app.initQgis()
    layer = QgsRasterLayer(sys.argv[1], "classes")
    entries = [
        [label, color.name(), color.alpha()] for label, color in layer.renderer().legendSymbologyItems()
    ]
    print(json.dumps({"valid": layer.isValid(), "renderer": layer.renderer().type(), "legend": entries}))
    sys.stdout.flush()
    os._exit(0)  # QGIS 3.22 may crash while tearing down headless; the answer is out
    """
)


def qgis_legend(map_path: Path) -> dict[str, object]:
    """The legend QGIS (its Python API, headless) shows for ``map_path`` opened as a layer."""
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(
            "QGIS's Python API is not installed (Debian python3-qgis; `make sysdeps` installs it as root)"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GDAL", "PROJ"))}
    home = tempfile.mkdtemp(prefix="qgis-home-")  # mode 0700, as Qt wants its runtime folder
    env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=home, HOME=home)
    done = subprocess.run(
        [SYSTEM_PYTHON, "-c", QGIS_LEGEND, str(map_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_qgis_shows_exactly_the_classes_with_their_names_and_colours(
    result: ClassifyResult, tmp_path: Path
) -> None:
    legend = qgis_legend(result.classes)
    assert legend["valid"]
    assert legend["renderer"] == "paletted"
    assert legend["legend"] == [[c.name, c.color, 255] for c in CLASSES.classes]
    # Control: the same map without its style shows QGIS's 256-row palette.
    bare = tmp_path / "classes.tif"
    shutil.copy(result.classes, bare)
    rows = qgis_legend(bare)["legend"]
    assert isinstance(rows, list)
    assert len(rows) == 256


def test_machine_names_stay_unique_when_a_suffixed_name_meets_another_class() -> None:
    """STAC review: ``A B`` and ``A-B`` became ``a-b-1`` and ``a-b-2``; a class ``a-b-1`` kept its name."""
    table = ClassTable(
        classes=[
            LandCoverClass(value=1, name="A B", color="#000000"),
            LandCoverClass(value=2, name="A-B", color="#111111"),
            LandCoverClass(value=3, name="a-b-1", color="#222222"),
        ]
    )
    names = table.machine_names()
    assert len(set(names)) == 3
    assert names == ["a-b-1-1", "a-b-2", "a-b-1-3"]
    assert all(re.fullmatch(r"[0-9A-Za-z_-]+", n) for n in names)


def _calibrated_model(folder: Path, n_classes: int) -> Path:
    """A forest of ``n_classes`` classes on random features whose contract carries class sets."""
    from lulc.contract import ClassSets

    rng = np.random.default_rng(n_classes)
    values = list(range(1, n_classes + 1))
    classes = ClassTable.from_labels(values)
    contract = make_contract(classes, values, bands=BANDS, scale=1e-4, name=f"sets{n_classes}")
    contract = contract.model_copy(update={"class_sets": ClassSets(coverage=0.9, min_probability=0.2)})
    x = rng.uniform(0, 0.5, (30 * n_classes, 3)).astype(np.float32)
    model_dir = folder / f"sets{n_classes}"
    model_dir.mkdir()
    return export_onnx(fit_forest(x, np.repeat(values, 30)), 3, contract, model_dir / "model.onnx")


def test_a_sets_map_names_its_bits_in_an_item_that_validates_and_too_many_classes_say_why_none(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """Review: sets.tif's bitmask band was described in its title only; an 8-class model lost it silently."""
    from lulc.progress import NoteKeeper

    request = ClassifyRequest(aoi=None, datetime="2024-06-01", block_size=64)
    factory = ImageReaderFactory(inputs["image"])
    notes = NoteKeeper()
    done = classify(
        request, load_model(_calibrated_model(tmp_path, 3)), factory, tmp_path / "three", progress=notes
    )
    item = json.loads(done.item.read_text())
    assert_valid_stac(item, "item.json")  # classification:bitfields on band 2 against classification v2.0.0
    fields = item["assets"]["sets"]["raster:bands"][1]["classification:bitfields"]
    assert [(f["offset"], f["length"], f["name"]) for f in fields] == [(0, 1, "1"), (1, 1, "2"), (2, 1, "3")]
    broken = json.loads(done.item.read_text())
    del broken["assets"]["sets"]["raster:bands"][1]["classification:bitfields"][0]["offset"]
    assert stac_errors(broken), "the validator checks the bit fields"
    assert not [n for n in notes.notes if "sets.tif" in n]
    many = classify(
        request, load_model(_calibrated_model(tmp_path, 8)), factory, tmp_path / "eight", progress=notes
    )
    assert not (many.item.parent / "sets.tif").exists()
    assert "no sets.tif: the model's 8 classes are more than a set bitmask holds (7)" in notes.notes
