"""``lulc classify`` as a user runs it: outputs, progress, exit code 2 and one clear line for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from lulc.classes import ClassTable
from lulc.cog import write_cog
from lulc.sas import PLANETARY_COMPUTER_TOKENS
from tests.service.engine_support import export_onnx, fit_forest, make_contract
from tests.support.cli import LULC, lulc, lulc_program

BANDS = ("red", "nir", "swir16")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-band uint16 image (DN = reflectance * 10000, nodata 0 in one corner) and a model for it."""
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    truth = np.repeat(np.repeat(rng.integers(1, 4, (6, 6)), 50, axis=0), 50, axis=1)
    means = np.array([[0.03, 0.02, 0.01], [0.05, 0.40, 0.20], [0.20, 0.25, 0.30]], dtype=np.float32)
    reflectance = means[truth - 1].transpose(2, 0, 1) + rng.normal(0, 0.01, (3, 300, 300)).astype(np.float32)
    dn = np.clip(reflectance * 10000, 1, 65535).astype(np.uint16)
    dn[:, :40, :40] = 0
    image = write_cog(
        folder / "image.tif",
        dn,
        crs="EPSG:32633",
        transform=from_origin(500000, 5000000, 10, 10),
        nodata=0,
        band_descriptions=list(BANDS),
    )
    classes = ClassTable.from_labels([1, 2, 3])
    contract = make_contract(classes, [1, 2, 3], bands=BANDS, indices=("ndvi",), scale=1e-4)
    x = np.concatenate([means[k] + rng.normal(0, 0.01, (40, 3)) for k in range(3)]).astype(np.float32)
    ndvi = (x[:, 1] - x[:, 0]) / (x[:, 1] + x[:, 0])
    features = np.column_stack([x, ndvi]).astype(np.float32)
    model = export_onnx(
        fit_forest(features, np.repeat(np.arange(1, 4), 40)), 4, contract, folder / "model.onnx"
    )
    aoi = folder / "aoi.geojson"
    with rasterio.open(image) as src:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    aoi.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    return {"image": image, "model": model, "aoi": aoi, "folder": folder, "truth": _save(folder, truth)}


def _save(folder: Path, truth: np.ndarray) -> Path:
    path = folder / "truth.npy"
    np.save(path, truth)
    return path


def classify_image(inputs: dict[str, Path], out: Path, *extra: str | int) -> subprocess.CompletedProcess[str]:
    """``lulc classify`` of the test image with its model, dated, into ``out``."""
    args = ["--model", inputs["model"], "--image", inputs["image"], "--datetime", "2024-06-01"]
    return lulc("classify", *args, "--out", out, *map(str, extra))


def test_classify_an_image_writes_the_four_outputs(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = classify_image(inputs, out, "--block-size", 128)
    assert done.returncode == 0, done.stderr
    assert "classifying blocks: 9/9" in done.stdout + done.stderr
    assert {"classes.tif", "confidence.tif", "item.json", "stats.json"} <= {p.name for p in out.iterdir()}
    with rasterio.open(out / "classes.tif") as src:
        mapped = src.read(1)
    truth = np.load(inputs["truth"])
    assert (mapped[:40, :40] == 255).all()
    valid = mapped != 255
    assert (mapped[valid] == truth[valid]).mean() > 0.95
    stats = json.loads((out / "stats.json").read_text())
    assert stats["nodata_pixels"] == 1600


def test_classify_does_not_import_what_only_cleaning_needs(inputs: dict[str, Path], tmp_path: Path) -> None:
    """SciPy's ndimage is imported only to clean a map.

    Checking --mmu-connectivity imported it: ~0.2 CPU s of every run's start-up (and of every serverless
    invocation).
    """
    args = ["--model", inputs["model"], "--image", inputs["image"], "--datetime", "2024-06-01"]
    script = (
        "import sys\n"
        "from lulc.cli import main\n"
        "try:\n"
        "    main(['classify', *sys.argv[1:]])\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, sorted(m for m in ('scipy', 'sklearn') if m in sys.modules))\n"
    )
    plain = [*map(str, args), "--out", str(tmp_path / "plain")]
    run = [sys.executable, "-c", script]
    done = subprocess.run([*run, *plain], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "0 []", done.stdout + done.stderr
    cleaned = [*map(str, args), "--mmu-ha", "1", "--out", str(tmp_path / "cleaned")]
    done = subprocess.run([*run, *cleaned], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "0 ['scipy']", done.stdout + done.stderr
    assert (tmp_path / "cleaned" / "clean" / "classes.tif").is_file()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("invalid-geojson", "not valid GeoJSON"),
        ("self-intersecting", "Self-intersection"),
        ("corrupt-onnx", "not a readable ONNX model"),
        ("no-source", "exactly one of --stac"),
        ("missing-catalog", "does not exist"),
        ("catalog-folder", "is a folder: give its STAC catalog, collection or item file (it holds catalog"),
        ("every-with-image", "--every needs a STAC source"),
        ("every-open-window", "needs a --datetime interval with both ends"),
        ("every-week", "--every must be one of year, season, month"),
        ("negative-mmu", "--mmu-ha must be a non-negative number"),
        ("mmu-connectivity", "--mmu-connectivity must be 4 or 8"),
        ("mmu-connectivity-alone", "--mmu-connectivity must be 4 or 8"),  # CLI review: ignored, exit 0
        ("crs-in-degrees", "is not a projected CRS in metres"),  # as the service refuses it
        ("scale-without-image", "--scale and --offset read an --image's values"),
        ("image-off-earth", "are no place on Earth in its CRS EPSG:4326"),  # CLI review: NaN ha, exit 0
        ("crs-proj-string", "AUTHORITY:CODE"),
        ("undated-open-window", "is open-ended: give the acquisition date"),  # no made-up acquisition time
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    inputs: dict[str, Path], tmp_path: Path, case: str, message: str
) -> None:
    model, aoi, source = inputs["model"], inputs["aoi"], ["--image", inputs["image"]]
    if case == "invalid-geojson":
        aoi = tmp_path / "bad.geojson"
        aoi.write_text('{"type": "Polygon", "coordinates": [[[0, 0], [1, 1]')
    elif case == "self-intersecting":
        aoi = tmp_path / "bowtie.geojson"
        ring = [[15, 45], [15.01, 45.01], [15.01, 45], [15, 45.01], [15, 45]]
        aoi.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    elif case == "corrupt-onnx":
        model = tmp_path / "model.onnx"
        model.write_bytes(inputs["model"].read_bytes()[:500])
    elif case == "no-source":
        source = []
    elif case == "missing-catalog":
        source = ["--stac", str(tmp_path / "nowhere" / "catalog.json"), "--datetime", "2024-06"]
    elif case == "catalog-folder":  # CLI review: the allow-list's "not an existing file under its folders"
        (tmp_path / "world").mkdir()
        (tmp_path / "world" / "catalog.json").write_text("{}")
        source = ["--stac", str(tmp_path / "world"), "--datetime", "2024-06"]
    elif case == "every-with-image":
        source += ["--every", "year", "--datetime", "2021/2024"]
    elif case.startswith("every-"):
        window = "2021/.." if case == "every-open-window" else "2021/2024"
        every = "week" if case == "every-week" else "year"
        source = ["--stac", str(tmp_path / "catalog.json"), "--every", every, "--datetime", window]
    elif case == "negative-mmu":
        source += ["--mmu-ha", "-1", "--datetime", "2024-06-01"]
    elif case == "mmu-connectivity":
        source += ["--mmu-ha", "1", "--mmu-connectivity", "6", "--datetime", "2024-06-01"]
    elif case == "mmu-connectivity-alone":
        source += ["--mmu-connectivity", "5", "--datetime", "2024-06-01"]
    elif case == "scale-without-image":
        source = ["--stac", str(tmp_path / "catalog.json"), "--datetime", "2024-06", "--scale", "0.0001"]
    elif case == "image-off-earth":  # UTM metres labelled as degrees
        with rasterio.open(inputs["image"]) as src:
            profile, data = src.profile, src.read()
        with rasterio.open(tmp_path / "degrees.tif", "w", **{**profile, "crs": "EPSG:4326"}) as dst:
            dst.write(data)
        source = ["--image", tmp_path / "degrees.tif", "--datetime", "2024-06-01"]
    elif case == "crs-in-degrees":
        source += ["--crs", "EPSG:4326", "--datetime", "2024-06-01"]
    elif case == "crs-proj-string":
        source += ["--crs", "+proj=utm +zone=33 +nadgrids=/etc/passwd", "--datetime", "2024-06-01"]
    elif case == "undated-open-window":
        source += ["--datetime", "2024-06/.."]
    out = tmp_path / "out"
    done = lulc("classify", "--model", model, "--aoi", aoi, *source, "--out", out)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() or not any(out.iterdir())


LONG = "a-folder-name-longer-than-a-narrow-terminal-" * 2


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad-option-value", "Invalid value for '--block-size'"),
        ("missing-option", "Missing option '--model'"),
        ("unknown-option", "No such option: --colour"),
        ("unknown-command", "No such command 'clasify'"),
        ("missing-value", "lulc classify: Option '--out' requires an argument. (see 'lulc classify --help')"),
        ("missing-image", "nowhere.tif does not exist"),
        ("undated-image", "no acquisition date"),
    ],
)
def test_every_error_is_one_line_through_a_pipe_on_a_narrow_terminal(
    inputs: dict[str, Path], tmp_path: Path, case: str, message: str
) -> None:
    deep = tmp_path / LONG / LONG
    deep.mkdir(parents=True)
    model, image, out = str(inputs["model"]), str(inputs["image"]), str(deep / "out")
    args = {
        "bad-option-value": [
            "classify",
            "--model",
            model,
            "--image",
            image,
            "--out",
            out,
            "--block-size",
            "x",
        ],
        "missing-option": ["classify", "--image", image, "--out", out],
        "unknown-option": ["classify", "--model", model, "--image", image, "--out", out, "--colour", "red"],
        "unknown-command": ["clasify", "--model", model],
        "missing-value": ["classify", "--model", model, "--image", image, "--out"],  # said "lulc: ..."
        "missing-image": ["classify", "--model", model, "--image", str(deep / "nowhere.tif"), "--out", out],
        "undated-image": ["classify", "--model", model, "--image", image, "--out", out],
    }[case]
    done = subprocess.run(
        [str(LULC), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "40"},  # stdout and stderr are pipes: rich would wrap at 40 (or 80)
        check=False,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert message in lines[0]
    if case == "missing-image":
        assert str(deep / "nowhere.tif") in lines[0]  # the whole path, unbroken
    assert not (deep / "out").exists() or not any((deep / "out").iterdir())


@pytest.mark.parametrize("command", ["serve", "tiler"])
def test_invalid_settings_are_refused_before_the_apps_are_imported(command: str) -> None:
    """A refused setting waited for FastAPI, TiTiler and uvicorn to import: 1.8 s (serve), 2.0 s (tiler)."""
    script = (
        "import sys\n"
        "from lulc.cli import main\n"
        "try:\n"
        "    main([sys.argv[1]])\n"
        "except SystemExit as stop:\n"
        "    heavy = ('fastapi', 'uvicorn', 'titiler.core', 'service.app', 'tiler.app')\n"
        "    print(stop.code, sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "LULC_SERVICE_PORT": "70000", "LULC_TILER_PORT": "70000"}
    done = subprocess.run(
        [sys.executable, "-c", script, command],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert done.stdout.split("\n")[-2] == "2 []", done.stdout + done.stderr
    assert "port: Input should be less than or equal to 65535" in done.stderr


def test_invalid_settings_are_one_line_naming_the_field(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(LULC), "serve"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "40", "LULC_SERVICE_PORT": "70000", "LULC_SERVICE_MAX_AOI_KM2": "-1"},
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert "port" in lines[0]
    assert "max_aoi_km2" in lines[0]  # every problem, on the same line


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_a_port_option_out_of_range_is_one_line_before_anything_starts(port: str) -> None:
    done = lulc_program("serve", "--port", port)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: invalid LULC_SERVICE_* settings or options: port: "), done.stderr


def test_an_image_whose_bands_are_unnamed_needs_their_names_unless_it_has_exactly_the_models(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """Four unnamed bands for a three-band model: not bands 1-3 silently, but --image-bands (review)."""
    with rasterio.open(inputs["image"]) as src:
        named = src.read()
        profile = {"crs": src.crs, "transform": src.transform, "nodata": src.nodata}
    extra = np.full_like(named[:1], 1234)
    shuffled = np.concatenate([named[2:3], extra, named[0:2]])  # swir16, coastal, red, nir
    image = write_cog(tmp_path / "unnamed.tif", shuffled, **profile)
    common = ["--model", inputs["model"], "--image", image, "--datetime", "2024-06-01", "--block-size", 128]
    refused = lulc("classify", *common, "--out", tmp_path / "refused")
    assert refused.returncode == 2, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "--image-bands" in refused.stderr
    assert "its bands have no names" in refused.stderr
    done = lulc("classify", *common, "--image-bands", "swir16,coastal,red,nir", "--out", tmp_path / "named")
    assert done.returncode == 0, done.stderr
    baseline = lulc(
        "classify", *common[:2], "--image", inputs["image"], *common[4:], "--out", tmp_path / "base"
    )
    assert baseline.returncode == 0, baseline.stderr
    with (
        rasterio.open(tmp_path / "named" / "classes.tif") as a,
        rasterio.open(tmp_path / "base" / "classes.tif") as b,
    ):
        np.testing.assert_array_equal(a.read(1), b.read(1))
    wrong_count = lulc("classify", *common, "--image-bands", "red,nir", "--out", tmp_path / "wrong")
    assert wrong_count.returncode == 2
    assert "names 2 bands but image" in wrong_count.stderr


def test_an_out_that_is_a_file_is_one_clear_line_and_the_file_is_kept(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    done = classify_image(inputs, precious)
    assert done.returncode == 2, done.stderr
    assert "is a file: give a folder" in done.stderr
    assert "unexpected" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert precious.read_text() == "keep me"


def test_aoi_is_a_box_or_any_vector_file_as_for_train(inputs: dict[str, Path], tmp_path: Path) -> None:
    """``--aoi w,s,e,n`` is the box ``lulc train --aoi`` takes; the help no longer says GeoJSON in EPSG:4326.

    Review: the help said "AOI GeoJSON (EPSG:4326)" though any OGR file in any declared CRS works, and a box
    (as train takes it) was read as a file name.
    """
    import typer

    from lulc.cli import app

    classify = getattr(typer.main.get_command(app), "commands")["classify"]  # noqa: B009
    help_text = next(p.help for p in classify.params if p.name == "aoi")
    assert "GeoJSON (EPSG:4326)" not in help_text
    assert "w,s,e,n" in help_text
    assert "any CRS" in help_text
    ring = json.loads(inputs["aoi"].read_text())["coordinates"][0]
    (w, s), (e, n) = ring[0], ring[2]
    box = f"{w!r},{s!r},{e!r},{n!r}"
    by_file = classify_image(inputs, tmp_path / "file", "--aoi", inputs["aoi"])
    by_box = classify_image(inputs, tmp_path / "box", "--aoi", box)
    assert by_file.returncode == 0, by_file.stderr
    assert by_box.returncode == 0, by_box.stderr
    with (
        rasterio.open(tmp_path / "file" / "classes.tif") as a,
        rasterio.open(tmp_path / "box" / "classes.tif") as b,
    ):
        assert (a.read(1) == b.read(1)).all()
    for bad, message in (
        (f"{e!r},{s!r},{w!r},{n!r}", "w < e and s < n"),
        ("15,45,16,95", "not longitude/latitude (EPSG:4326) in range"),  # checked by the one AOI parser
    ):
        done = classify_image(inputs, tmp_path / "bad", "--aoi", bad)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1
        assert message in done.stderr


def test_an_upstream_failure_exits_75_and_a_missing_catalog_2(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every named error exited 2: a Job could not tell a STAC server that is down from bad input."""
    from tests.support.http_server import start_http_server

    monkeypatch.setenv("LULC_SERVICE_ALLOWED_HOSTS", "127.0.0.1")
    args = ["--model", inputs["model"], "--aoi", inputs["aoi"], "--datetime", "2024-06-01"]
    with start_http_server(inputs["folder"], fail_every=1) as down:  # every request: 503, after retries
        failed = lulc("classify", "--stac", down.url("catalog.json"), *args, "--out", tmp_path / "a")
    with start_http_server(inputs["folder"]) as up:
        missing = lulc("classify", "--stac", up.url("nope.json"), *args, "--out", tmp_path / "b")
    assert failed.returncode == 75, failed.stderr
    assert failed.stderr.splitlines() == [f"error: catalog {down.url('catalog.json')} answered HTTP 503"]
    assert missing.returncode == 2, missing.stderr
    assert "answered HTTP 404" in missing.stderr


def test_an_image_without_georeferencing_is_one_line_in_classify_and_train(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """Diff review: rasterio's NotGeoreferencedWarning came first, two lines of it, then the error."""
    image = tmp_path / "plain.tif"
    with rasterio.open(
        image, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint16"
    ) as dst:  # no CRS, no transform
        dst.write(np.full((3, 64, 64), 500, dtype=np.uint16))
        dst.descriptions = BANDS
    classified = lulc(
        "classify", "--model", inputs["model"], "--image", image, "--datetime", "2024-06-01",
        "--out", tmp_path / "run",
    )  # fmt: skip
    import geopandas as gpd
    from shapely.geometry import Point

    points = tmp_path / "points.gpkg"
    gpd.GeoDataFrame(
        {"label": [1, 1, 2, 2]}, geometry=[Point(10 * i, -10 * i) for i in range(1, 5)], crs="EPSG:32633"
    ).to_file(points)
    trained = lulc(
        "train", "--image", image, "--points", points, "--label-field", "label", "--bands", ",".join(BANDS),
        "--out", tmp_path / "model",
    )  # fmt: skip
    for done in (classified, trained):
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [f"error: image {image} has no CRS"], done.stderr


def test_the_python_api_takes_and_checks_what_the_command_does(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """The Python API takes and checks what ``lulc classify`` does (one ``prepare_run``).

    Python API review: no image_bands (a model trained with them could not be applied), no output CRS or
    workers check (pixels of 10 US feet), AOIs made in Python (tuples) passed unchecked, a date raised
    AttributeError, and the AOA and class-set maps were not in the result.
    """
    import datetime as dt

    from shapely.geometry import box, mapping

    from lulc.errors import InputError
    from service.api import classify

    with rasterio.open(inputs["image"]) as src:
        named = src.read()
        profile = {"crs": src.crs, "transform": src.transform, "nodata": src.nodata}
        bounds = src.bounds
    image = write_cog(tmp_path / "unnamed.tif", named[[2, 0, 1]], **profile)  # swir16, red, nir; no names
    run = classify(
        inputs["model"], image=image, image_bands=["swir16", "red", "nir"], datetime=dt.date(2024, 6, 1),
        out=tmp_path / "api", block_size=128,
    )  # fmt: skip
    cli = lulc(
        "classify", "--model", inputs["model"], "--image", image, "--image-bands", "swir16,red,nir",
        "--datetime", "2024-06-01", "--block-size", 128, "--out", tmp_path / "cli",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert (tmp_path / "api" / "classes.tif").read_bytes() == (tmp_path / "cli" / "classes.tif").read_bytes()
    for name, path in (("aoa.tif", run.aoa), ("sets.tif", run.sets)):  # what the run wrote, in the result
        written = tmp_path / "api" / name
        assert path == (written if written.exists() else None)
    assert "2024-06-01" in json.dumps(run.item["properties"])  # the date, as --datetime 2024-06-01
    for options, words in (
        ({"crs": "EPSG:2227"}, "not a projected CRS in metres"),  # US survey feet
        ({"workers": 0}, "--workers must be at least 1"),
        ({"aoi": mapping(box(*bounds))}, "not longitude/latitude"),  # the image's metres, as tuples
    ):
        with pytest.raises(InputError, match=words):
            classify(inputs["model"], image=inputs["image"], out=tmp_path / "x", **options)
    assert not (tmp_path / "x").exists()


def test_the_python_api_takes_aois_and_names_as_a_notebook_has_them(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """AOIs and names as a notebook has them; ``--image-bands ""`` beside ``--stac`` refused.

    Review of prepare_run: heights refused, a collection's name split into letters, a frame without a CRS
    read as lon/lat, a path-like refused, and ``--image-bands ""`` with --stac no longer refused.
    """
    from pathlib import PurePosixPath

    import geopandas as gpd
    from shapely.geometry import Polygon, box, mapping

    from lulc.errors import InputError
    from service.local_run import geojson_aoi, prepare_run

    with rasterio.open(inputs["image"]) as src:
        frame = gpd.GeoDataFrame(geometry=[box(*src.bounds)], crs=src.crs)
    lonlat = frame.to_crs("EPSG:4326")
    w, s, e, n = lonlat.total_bounds
    polygon_z = Polygon([(w, s, 0.0), (e, s, 0.0), (e, n, 0.0), (w, n, 0.0)])

    def positions(value: object) -> list[list[float]]:
        if isinstance(value, dict):  # not a bbox
            keys = ("features", "geometry", "geometries", "coordinates")
            return [p for k in keys if k in value for p in positions(value[k])]
        if isinstance(value, list) and value and isinstance(value[0], int | float):
            return [value]
        return [p for v in value for p in positions(v)] if isinstance(value, list) else []

    for given in (mapping(polygon_z), gpd.GeoDataFrame(geometry=[polygon_z, None], crs="EPSG:4326"), frame):
        aoi = json.loads(json.dumps(geojson_aoi(given)))  # as the engine's parser would see it
        assert positions(aoi), aoi
        assert all(len(p) == 2 for p in positions(aoi)), aoi  # heights dropped, as a file's are
    assert geojson_aoi(PurePosixPath(inputs["aoi"])) == geojson_aoi(inputs["aoi"])
    with pytest.raises(InputError, match="has no CRS"):
        geojson_aoi(frame.set_crs(None, allow_override=True))
    run = prepare_run(
        inputs["model"],
        out=tmp_path / "a",
        stac="catalog.json",
        collection="sentinel-2-l2a",
        aoi=mapping(polygon_z),
        when="2024-06-01/2024-08-31",
    )
    assert run.factory.collections == ("sentinel-2-l2a",)  # type: ignore[attr-defined]
    assert run.factory.retry.signer is None  # type: ignore[attr-defined]
    # the Planetary Computer's STAC API: its blobs are read with its SAS tokens (lulc.sas)
    pc = prepare_run(
        inputs["model"],
        out=tmp_path / "pc",
        stac="https://planetarycomputer.microsoft.com/api/stac/v1",
        collection="sentinel-2-l2a",
        aoi=mapping(polygon_z),
        when="2024-06-01/2024-08-31",
    )
    assert pc.factory.retry.signer.token_url == PLANETARY_COMPUTER_TOKENS  # type: ignore[attr-defined]
    named = prepare_run(
        inputs["model"], out=tmp_path / "b", image=inputs["image"], image_bands="red,nir,swir16"
    )
    assert named.factory.image_bands == ("red", "nir", "swir16")  # type: ignore[attr-defined]
    refused = lulc(
        "classify", "--model", inputs["model"], "--stac", "catalog.json", "--aoi", "0,0,1,1",
        "--datetime", "2024", "--image-bands", "", "--out", tmp_path / "c",
    )  # fmt: skip
    assert refused.stderr.splitlines() == ["error: --image-bands names the bands of an --image"]


def test_a_stac_source_needs_a_time_window_on_the_command_line_and_in_python(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """README review: without --datetime every image of the catalog, of every year, was composited."""
    from lulc.errors import InputError
    from service.api import classify

    refused = lulc(
        "classify", "--model", inputs["model"], "--stac", "catalog.json", "--aoi", "0,0,1,1",
        "--out", tmp_path / "a",
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: --datetime is required with --stac: the time window whose imagery is composited, e.g. "
        "2024-06-01/2024-08-31 (.. for an open end)"
    ]
    with pytest.raises(InputError, match="--datetime is required with --stac"):
        classify(inputs["model"], stac="catalog.json", aoi="0,0,1,1", out=tmp_path / "b")
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_a_stac_aoi_over_max_mpx_is_refused_before_any_search(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    """CLI review: a 20 x 10 degree AOI started 2.3 million blocks (days of work) with room on the disk.

    The grid's size is checked with the output CRS, before the catalog is even read (it does not exist
    here): by default over 10,000 Mpx, or over ``--max-mpx``; an AOI under it gets as far as the catalog.
    """
    from service.api import classify
    from service.workflow import AoiTooLargeError

    catalog = str(tmp_path / "nowhere" / "catalog.json")

    def run(aoi: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return lulc(
            "classify", "--model", inputs["model"], "--stac", catalog, "--aoi", aoi,
            "--datetime", "2024-06", "--out", tmp_path / "out", *extra,
        )  # fmt: skip

    huge = run("0,40,20,50")
    assert huge.returncode == 2, huge.stderr
    [line] = huge.stderr.splitlines()
    assert "Mpx), over --max-mpx 10,000; raise --max-mpx to classify it all" in line, line
    small = "15.0,45.0,15.1,45.1"  # about 8 x 11 km: 0.9 Mpx at 10 m
    capped = run(small, "--max-mpx", "0.04")
    assert capped.returncode == 2
    assert "over --max-mpx 0.04;" in capped.stderr  # as given (review: "0.0")
    assert "over --max-mpx 0.123456789;" in run(small, "--max-mpx", "0.123456789").stderr
    allowed = run(small, "--max-mpx", "2")
    assert allowed.returncode == 2
    assert "catalog.json" in allowed.stderr  # the catalog's error
    assert "max-mpx" not in allowed.stderr
    for bad in ("0", "-1", "nan"):
        refused = run(small, "--max-mpx", bad)
        assert refused.stderr.splitlines() == [f"error: --max-mpx must be above 0, got {float(bad)}"]
    with pytest.raises(AoiTooLargeError, match=r"over --max-mpx 0\.5;"):
        classify(
            inputs["model"], stac=catalog, aoi=small, datetime="2024-06", out=tmp_path / "api", max_mpx=0.5
        )
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "api").exists()


def test_serve_refuses_folders_no_job_could_use_before_it_starts(tmp_path: Path) -> None:
    """Bad folders are refused at start, in one line.

    CLI review: a models "folder" and an output "folder" that were files started a service whose /healthz
    said ok, which listed no models and answered every job with a 500. (A models folder that does not exist
    yet is only warned of: a deployment may fill it after the start.)
    """
    import socket

    a_file = tmp_path / "outputs.txt"
    a_file.write_text("not a folder")
    (tmp_path / "models").mkdir()
    cases = [
        ({"LULC_SERVICE_MODELS_DIR": str(a_file)}, f"LULC_SERVICE_MODELS_DIR {a_file} is a file"),
        (
            {"LULC_SERVICE_MODELS_DIR": str(tmp_path / "models"), "LULC_SERVICE_OUTPUT_DIR": str(a_file)},
            f"LULC_SERVICE_OUTPUT_DIR {a_file} is a file",
        ),
    ]
    for env, message in cases:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        done = subprocess.run(
            [str(LULC), "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "40", **env},
            check=False,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, done.stderr
        assert lines == [f"error: {message}" + lines[0].split(message, 1)[-1]], done.stderr
