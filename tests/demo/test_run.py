"""`lulc demo` end to end, and what its products are worth against the demo world's truth.

One demo run (512 px) serves every test here: the pipeline's own outputs and the web map, then two
simulations against the truth rasters, which only draw pixels with numpy:

- ``lulc change``'s change-area 95 % intervals cover the true change area (truth of both years) in at least
  93 % of 200 seeded validation samples of the design ``lulc design`` makes on the change product (the
  change strata: each class unchanged, change grouped by the class it became);
- ``lulc design``'s sample reaches its target standard error of overall accuracy within 10 %.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import rasterio

from demo.run import DemoResult, program_name, run_demo
from lulc.olofsson import estimate
from service.change import change_runs
from service.change_areas import change_area_estimate, change_strata
from service.design import design_run, plan_design
from service.run_folder import open_run
from tests.support.serve import BackgroundServer
from tests.support.stac_validation import assert_valid_stac_file
from tiler.app import create_app
from tiler.settings import TilerSettings

pytestmark = pytest.mark.slow

DRAWS = 200
CHANGE_MIN_PER_STRATUM = 100
"""Points per change stratum at least: the upper end of Olofsson et al.'s 50-100 for rare strata."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, list[str]]:
    lines: list[str] = []
    result = run_demo(tmp_path_factory.mktemp("demo") / "demo", size=512, seed=0, echo=lines.append)
    return result, lines


def _read(path: Path) -> npt.NDArray[np.uint8]:
    with rasterio.open(path) as src:
        data: npt.NDArray[np.uint8] = src.read(1)
    return data


def _truth_under(map_path: Path, truth_path: Path) -> npt.NDArray[np.uint8]:
    """The truth raster on the map's grid (a window of the world's grid: same CRS, pixel size, alignment)."""
    with rasterio.open(map_path) as mapped, rasterio.open(truth_path) as truth:
        assert mapped.crs == truth.crs
        window = truth.window(*mapped.bounds).round_offsets().round_lengths()
        data: npt.NDArray[np.uint8] = truth.read(1, window=window)
        assert data.shape == mapped.shape
    return data


def test_demo_trains_classifies_assesses_cleans_maps_change_and_serves(
    demo: tuple[DemoResult, list[str]],
) -> None:
    result, lines = demo
    assert [line[:4] for line in lines] == ["1/6 ", "2/6 ", "3/6 ", "4/6 ", "5/6 ", "6/6 "]
    assert (result.model / "model.onnx").is_file()
    assert {p.name for p in result.run.iterdir()} >= {
        "classes.tif",
        "confidence.tif",
        "item.json",
        "stats.json",
    }
    # a 512 px world has few points: the 2 pp agreement is checked on the default world elsewhere
    assert result.holdout_accuracy > 0.9
    assert result.map_accuracy > 0.9
    assert result.clean is not None
    assert result.change is not None
    assert result.later_run is not None
    assert result.clean_accuracy is not None
    assert result.clean_accuracy > 0.9
    assert "cleaned map (minimum mapping unit 0.5 ha" in lines[3]
    clean_item = assert_valid_stac_file(result.clean / "item.json")
    change_item = assert_valid_stac_file(result.change / "item.json")
    assert clean_item["properties"]["lulc:product"] == "clean"
    assert clean_item["properties"]["lulc:source"] == json.loads((result.run / "item.json").read_text())["id"]
    assert change_item["properties"]["lulc:product"] == "change"
    assert [k["rel"] for k in change_item["links"]].count("derived_from") == 2
    later_item = assert_valid_stac_file(result.later_run / "item.json")
    assert later_item["properties"]["start_datetime"].startswith("2026-")

    out = result.world.parent
    settings = TilerSettings(allow=[str(out)], runs_dir=out / "runs", models_dir=out / "models")
    with BackgroundServer(create_app(settings)) as server:
        page = httpx.get(f"{server.url}/", timeout=30)
        assert page.status_code == 200
        assert "leaflet" in page.text.lower()
        runs = httpx.get(f"{server.url}/runs", timeout=30).json()
        listed = json.dumps(runs)
        assert listed.count("classes.tif") >= 3  # the map, the cleaned map and the later map
        legend = httpx.get(
            f"{server.url}/legend", params={"url": str(result.run / "classes.tif")}, timeout=30
        )
        assert legend.status_code == 200
        names = {c["name"] for c in legend.json()["classes"]}
        assert {"Water", "Forest"} <= names


def test_the_worlds_change_is_new_built_up_and_cleared_forest(demo: tuple[DemoResult, list[str]]) -> None:
    result, _ = demo
    whole = _read(result.world / "truth.tif") != _read(result.world / "truth-2026.tif")
    assert 0.005 < whole.mean() < 0.05
    change_map = result.change / "change.tif"
    before = _truth_under(change_map, result.world / "truth.tif")
    after = _truth_under(change_map, result.world / "truth-2026.tif")
    changed = before != after
    pairs = {(int(a), int(b)) for a, b in zip(before[changed], after[changed], strict=True)}
    assert {b for _, b in pairs} == {5, 6}  # to built-up, to bare soil
    assert {a for a, b in pairs if b == 6} == {2}  # bare soil only where forest was felled
    # the mapped change finds it: most truly changed pixels are mapped as changed
    codes = _read(change_map)
    valid = codes != 255
    mapped_changed = valid & (codes // 6 != codes % 6)
    assert (mapped_changed & changed).sum() > 0.7 * (valid & changed).sum()


def test_change_area_intervals_cover_the_true_change_area(
    demo: tuple[DemoResult, list[str]], tmp_path: Path
) -> None:
    result, _ = demo
    classes = open_run(result.run).classes
    n = len(classes.classes)
    position = np.full(256, -1, dtype=np.int64)
    position[list(classes.values)] = np.arange(n)
    change_map = result.change / "change.tif"
    before = _truth_under(change_map, result.world / "truth.tif")
    after = _truth_under(change_map, result.world / "truth-2026.tif")
    codes = _read(change_map).ravel()
    valid = codes != 255
    reference = (position[before] * n + position[after]).ravel()
    true_changed = int((valid & (before != after).ravel()).sum())
    # the sample design `lulc design` makes on the change product: change strata, >= 100 points each
    design = design_run(result.change, tmp_path / "change-sample.gpkg", min_per_class=CHANGE_MIN_PER_STRATUM)
    assert design.item["properties"]["lulc:design"]["kind"] == "change"
    strata = change_strata(codes, n).astype(np.int64)
    sizes = np.array([s.pixels for s in design.design.strata], dtype=np.int64)
    assert np.array_equal(sizes, np.bincount(strata[valid], minlength=2 * n))
    members = {s.value: np.flatnonzero(strata == s.value) for s in design.design.strata if s.points}
    points = {s.value: s.points for s in design.design.strata}
    code_pixels = np.bincount(codes[valid], minlength=n * n)
    covered, mapped_inside, widths = 0, 0, []
    mapped_changed = int(sum(code_pixels[i * n + j] for i in range(n) for j in range(n) if i != j))

    def changed_area(at: npt.NDArray[np.int64]) -> dict[str, float]:
        """The change area estimate (in pixels: one pixel given as one "hectare") from the pixels ``at``."""
        return change_area_estimate(
            codes[at].astype(np.int64),
            reference[at],
            sizes,
            1.0,
            classes,
            strata[at],
            code_pixels=code_pixels,
        )["changed"]

    for draw in range(DRAWS):
        rng = np.random.default_rng(draw)
        picked = np.concatenate([rng.choice(members[h], points[h], replace=False) for h in members])
        areas = changed_area(picked)
        half = areas["ci95_hectares"]
        covered += abs(areas["estimated_hectares"] - true_changed) <= half
        mapped_inside += abs(mapped_changed - areas["estimated_hectares"]) <= half
        widths.append(half)
    print(f"{design.design.size} points, coverage {covered}/{DRAWS}, true {true_changed} px, "
          f"mapped {mapped_changed} px, median half-width {np.median(widths):.0f} px")  # fmt: skip
    assert covered >= 0.93 * DRAWS
    # control: the map's own change area (pixel counting) is biased by its errors: the intervals reject it
    assert mapped_inside < 0.5 * DRAWS
    # the product: the design's own sample, labelled from the truth at both dates, through `lulc change`
    sample = _label_change_sample(design.path, change_map, before, after)
    product = change_runs(result.run, result.later_run, tmp_path / "change", points=sample)
    assert product.areas is not None
    assert "design" in product.areas["method"]
    x_rows, x_cols = _sample_pixels(sample, change_map)
    flat = x_rows * before.shape[1] + x_cols
    expected = changed_area(flat)
    pixel_ha = json.loads((result.run / "stats.json").read_text())["pixel_area_m2"] / 10_000.0
    assert product.areas["changed"]["estimated_hectares"] == pytest.approx(
        expected["estimated_hectares"] * pixel_ha, abs=1e-4
    )


def _sample_pixels(sample: Path, raster: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    import pyogrio.raw
    import shapely

    _, _, geometry, _ = pyogrio.raw.read(sample)
    points = shapely.from_wkb(geometry)
    with rasterio.open(raster) as src:
        cols, rows = ~src.transform @ (shapely.get_x(points), shapely.get_y(points))
    return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)


def _label_change_sample(
    sample: Path, raster: Path, before: npt.NDArray[np.uint8], after: npt.NDArray[np.uint8]
) -> Path:
    """Fill label_a and label_b from the truth rasters, as an analyst would, in place."""
    import pyogrio.raw

    meta, _, geometry, data = pyogrio.raw.read(sample)
    rows, cols = _sample_pixels(sample, raster)
    fields = list(meta["fields"])
    data = list(data)
    data[fields.index("label_a")] = np.array([str(int(v)) for v in before[rows, cols]], dtype=object)
    data[fields.index("label_b")] = np.array([str(int(v)) for v in after[rows, cols]], dtype=object)
    pyogrio.raw.write(
        sample,
        geometry,
        data,
        fields,
        layer=sample.stem,
        driver="GPKG",
        crs=meta["crs"],
        geometry_type="Point",
    )
    return sample


def test_design_reaches_its_target_standard_error_on_the_demo_world(
    demo: tuple[DemoResult, list[str]], tmp_path: Path
) -> None:
    result, _ = demo
    mapped = _read(result.run / "classes.tif").ravel()
    truth = _truth_under(result.run / "classes.tif", result.world / "truth.tif").ravel()
    values = list(open_run(result.run).classes.values)
    # anticipated user's accuracies: the map's own (what a pilot sample would estimate)
    accuracy = {
        str(v): float((truth[mapped == v] == v).mean()) if (mapped == v).any() else 1.0 for v in values
    }
    target = 0.01
    design = design_run(
        result.run, tmp_path / "sample.gpkg", target_se=target, users_accuracy=accuracy
    ).design
    sizes = np.array([s.pixels for s in design.strata])
    members = {i: np.flatnonzero(mapped == v) for i, v in enumerate(values) if design.strata[i].points}
    position = np.full(256, 0, dtype=np.int64)
    position[values] = np.arange(len(values))
    estimates, errors = [], []
    for draw in range(500):
        rng = np.random.default_rng(10_000 + draw)
        counts = np.zeros((len(values), len(values)))
        for i, pixels in members.items():
            picked = rng.choice(pixels, design.strata[i].points, replace=False)
            np.add.at(counts, (i, position[truth[picked]]), 1)
        est = estimate(counts, sizes)
        estimates.append(est.overall_accuracy)
        errors.append(est.overall_accuracy_se)
    spread, typical = float(np.std(estimates, ddof=1)), float(np.mean(errors))
    print(f"design {design.size} points: SD of OA {spread:.5f}, mean SE {typical:.5f}, target {target}")
    assert abs(spread / target - 1) < 0.1
    assert abs(typical / target - 1) < 0.1
    true_oa = float((mapped[mapped != 255] == truth[mapped != 255]).mean())
    assert abs(float(np.mean(estimates)) - true_oa) < 0.002  # unbiased
    # control: with the default anticipated accuracy (0.75 each) the same target asks for far more points
    assert plan_design(sizes, [0.75] * len(values), target, 50).size > 1.5 * design.size


def test_a_busy_port_is_refused_before_the_job_not_after_it(tmp_path: Path) -> None:
    """A second ``make demo`` beside a serving one redid the whole job, then failed to listen (review)."""
    import socket

    from typer.testing import CliRunner

    from lulc.cli import app
    from lulc.errors import InputError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "out"), "--port", str(port)])
    assert isinstance(result.exception, InputError), result.output
    assert f"cannot listen on 127.0.0.1:{port}" in str(result.exception)
    assert "--port" in str(result.exception)
    assert not (tmp_path / "out").exists(), "refused before any work"


def test_a_folder_of_other_models_and_runs_is_refused_untouched(tmp_path: Path) -> None:
    """CLI review: ``lulc demo --out X`` replaced the user's own models/demo and runs/demo in X."""
    from typer.testing import CliRunner

    from lulc.cli import app
    from lulc.errors import InputError

    mine = tmp_path / "mine"
    (mine / "models" / "demo").mkdir(parents=True)
    (mine / "models" / "demo" / "model.onnx").write_bytes(b"my model")
    for out, words in (
        (mine, "holds models but no demo world"),
        (mine / "models" / "demo" / "model.onnx", "is a file"),
    ):
        result = CliRunner().invoke(app, ["demo", "--out", str(out), "--no-serve", "--size", "128"])
        assert isinstance(result.exception, InputError), result.output
        assert words in str(result.exception)
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == [
        "models",
        "models/demo",
        "models/demo/model.onnx",
    ]
    assert (mine / "models" / "demo" / "model.onnx").read_bytes() == b"my model"


def test_the_reopen_hint_names_a_lulc_the_shell_finds(tmp_path: Path) -> None:
    """Review: after ``make demo`` the hint said ``lulc``, which a shell without the venv does not find."""
    venv_lulc = str(tmp_path / ".venv" / "bin" / "lulc")
    assert program_name(venv_lulc, None) == venv_lulc
    assert program_name(venv_lulc, "/usr/local/bin/lulc") == venv_lulc  # another lulc: not this one
    assert program_name(venv_lulc, venv_lulc) == "lulc"
    assert program_name("/usr/bin/pytest", None) == "lulc"  # run in-process: the command's name
