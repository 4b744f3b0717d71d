"""The Python API raises the errors the CLI prints: same class of failure, same one-line message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lulc.cli import error_line
from lulc.errors import LulcError
from service.api import classify
from training.api import train

LULC = str(Path(sys.executable).with_name("lulc"))


def _cli(*args: str) -> str:
    done = subprocess.run([LULC, *args], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def _api(call: Any, **kwargs: Any) -> str:
    with pytest.raises(LulcError) as raised:
        call(**kwargs)
    return error_line(raised.value)


def test_train_errors_match(lulc_py: Path, tmp_path: Path) -> None:
    image = lulc_py / "s2image.tif"
    missing = tmp_path / "no-such.gpkg"
    cli = _cli(
        "train",
        "--image",
        str(image),
        "--bands",
        "blue,green,red,nir",
        "--points",
        str(missing),
        "--label-field",
        "labels",
        "--out",
        str(tmp_path / "cli"),
    )
    api = _api(
        train,
        image=image,
        bands=["blue", "green", "red", "nir"],
        points=missing,
        label_field="labels",
        out=tmp_path / "api",
    )
    assert cli == api
    assert "no-such.gpkg does not exist" in api
    cli = _cli(
        "train",
        "--image",
        str(image),
        "--bands",
        "blue,green,red,nir",
        "--points",
        str(lulc_py / "samples.shp"),
        "--label-field",
        "nope",
        "--out",
        str(tmp_path / "cli"),
    )
    api = _api(
        train,
        image=image,
        bands=["blue", "green", "red", "nir"],
        points=lulc_py / "samples.shp",
        label_field="nope",
        out=tmp_path / "api",
    )
    assert cli == api
    assert "has no field 'nope'" in api
    assert not (tmp_path / "cli").exists()
    assert not (tmp_path / "api").exists()


def test_classify_errors_match(tmp_path: Path) -> None:
    model = Path(__file__).resolve().parents[1] / "data" / "models" / "pre-move-demo"
    missing = tmp_path / "no-such.tif"
    cli = _cli("classify", "--model", str(model), "--image", str(missing), "--out", str(tmp_path / "cli"))
    api = _api(classify, model=model, image=missing, out=tmp_path / "api")
    assert cli == api
    assert "does not exist" in api


def test_train_refuses_a_frame_or_an_array_in_one_line_naming_keyword_arguments(
    lulc_py: Path, tmp_path: Path
) -> None:
    """Notebook review: a GeoDataFrame as ``points`` raised pandas' ValueError from the recipe's merge."""
    import geopandas as gpd
    import numpy as np

    from training.errors import ConfigError

    frame = gpd.read_file(lulc_py / "samples.shp")
    image = lulc_py / "s2image.tif"
    with pytest.raises(ConfigError) as raised:
        train(image=image, points=frame, label_field="labels", out=tmp_path / "a")
    message = error_line(raised.value)
    assert message.startswith("error: invalid training recipe (keyword arguments): points: Input should be")
    assert "command" not in message  # no command here: keyword arguments
    # an array of band names is a sequence like a list: taken (it raised "truth value ... ambiguous")
    with pytest.raises(LulcError, match="does not exist"):
        train(image=image, points=tmp_path / "none.gpkg", bands=np.array(["blue", "red"]), out=tmp_path / "b")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("seed: 1\n")
    with pytest.raises(ConfigError) as raised:
        train(recipe, points=frame, out=tmp_path / "c")
    assert f"({recipe} with the keyword arguments): points:" in str(raised.value)
    assert not any(tmp_path.glob("[abc]"))


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"mmu_ha": "0.5"}, "mmu_ha= must be a number, got str '0.5'"),
        ({"block_size": "256"}, "block_size= must be a whole number, got str '256'"),
        ({"workers": 2.0}, "workers= must be a whole number, got float 2.0"),
        ({"max_cloud_cover": True}, "max_cloud_cover= must be a number, got bool True"),
    ],
)
def test_classify_refuses_a_number_given_as_text_in_one_line(
    tmp_path: Path, given: dict[str, Any], words: str
) -> None:
    """Notebook review: ``mmu_ha="0.5"`` raised ``TypeError: must be real number, not str`` from the sieve."""
    import numpy as np

    model = Path(__file__).resolve().parents[1] / "data" / "models" / "pre-move-demo"
    assert (
        _api(classify, model=model, image=tmp_path / "x.tif", out=tmp_path / "r", **given)
        == f"error: {words}"
    )
    numpy_numbers = {"mmu_ha": np.float32(0.5), "block_size": np.int64(256), "workers": np.int32(2)}
    assert "does not exist" in _api(
        classify, model=model, image=tmp_path / "x.tif", out=tmp_path / "r", **numpy_numbers
    )
    assert not (tmp_path / "r").exists()
