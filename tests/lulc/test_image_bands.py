"""One rule finds a model's bands in a local image, for training (``--image``) and classification alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from lulc.errors import InputError
from lulc.pixels import image_band_indexes
from training.imagery import open_local_imagery

WANTED = ["blue", "green", "red", "nir"]


def test_names_given_by_the_user_come_first() -> None:
    names = ["nir", "red", "swir16", "green", "blue"]
    assert image_band_indexes("x.tif", [None] * 5, WANTED, names) == (5, 4, 2, 1)
    # descriptions that disagree with the user's names lose
    assert image_band_indexes("x.tif", ["blue", "green", "red", "nir", "x"], WANTED, names) == (5, 4, 2, 1)


def test_band_descriptions_name_the_bands_when_the_user_does_not() -> None:
    assert image_band_indexes("x.tif", ["nir", "red", "green", "blue"], WANTED) == (4, 3, 2, 1)
    assert image_band_indexes("x.tif", ["coastal", "blue", "green", "red", "nir"], WANTED) == (2, 3, 4, 5)


def test_unnamed_bands_are_taken_in_order_only_when_their_count_matches() -> None:
    assert image_band_indexes("x.tif", [None] * 4, WANTED) == (1, 2, 3, 4)
    assert image_band_indexes("x.tif", ["B02", "B03", "B04", "B08"], WANTED) == (1, 2, 3, 4)
    with pytest.raises(InputError, match=r"its bands have no names; name all its bands in order"):
        image_band_indexes("x.tif", [None] * 5, WANTED)


def test_a_wrong_count_or_a_missing_band_is_one_line_naming_the_image() -> None:
    with pytest.raises(InputError, match=r"--image-bands names 3 bands but image x.tif has 4"):
        image_band_indexes("x.tif", [None] * 4, WANTED, ["blue", "green", "red"])
    with pytest.raises(InputError) as refused:
        image_band_indexes("x.tif", [None] * 4, WANTED, ["blue", "green", "red", "swir16"])
    message = str(refused.value)
    assert "\n" not in message
    # named in full by the user: no advice to name them (notebook review: told to give --image-bands)
    assert message == (
        "image x.tif lacks band(s) ['nir'] of ['blue', 'green', 'red', 'nir']: "
        "its bands are ['blue', 'green', 'red', 'swir16']"
    )
    with pytest.raises(InputError) as landsat:  # README review: "no band(s) [4 names] of [the same 4]"
        image_band_indexes("x.tif", ["SR_B2", "SR_B3", "SR_B4", "SR_B5"], WANTED)
    assert f"has none of the bands {list(WANTED)}: it has 4 and its bands are ['SR_B2'," in str(landsat.value)


def test_training_reads_described_bands_by_name_not_position(tmp_path: Path) -> None:
    """Before one rule served both, training took an image's bands by position and ignored descriptions."""
    data = np.arange(4 * 8 * 8, dtype=np.uint16).reshape(4, 8, 8) + 1000
    profile = {
        "driver": "GTiff",
        "width": 8,
        "height": 8,
        "count": 4,
        "dtype": "uint16",
        "crs": "EPSG:32631",
        "transform": Affine(10, 0, 500_000, 0, -10, 5_000_000),
    }
    path = tmp_path / "described.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data[::-1])  # data holds blue, green, red, nir; the file nir, red, green, blue
        dst.descriptions = ("nir", "red", "green", "blue")
    imagery = open_local_imagery(path, WANTED, None, None, None)
    assert imagery.reader.indexes == (4, 3, 2, 1)
    pixels = imagery.reader.read(next(iter(imagery.grid.blocks())))
    np.testing.assert_allclose(pixels, data / 10000, rtol=1e-6)  # blue, green, red, nir again


def test_esa_identifiers_and_any_case_name_the_bands() -> None:
    """An image naming its bands B04, B03, B02, B08 (red first) is read by those names, not by position."""
    assert image_band_indexes("x.tif", ["B04", "B03", "B02", "B08"], WANTED) == (3, 2, 1, 4)
    assert image_band_indexes("x.tif", ["B08", "b04", "B03", "B02"], WANTED) == (4, 3, 2, 1)
    assert image_band_indexes("x.tif", ["Red", "Green", "Blue", "NIR"], WANTED) == (3, 2, 1, 4)
    assert image_band_indexes("x.tif", ["Band_1", "Band_2", "Band_3", "Band_4"], WANTED) == (1, 2, 3, 4)
    # Earth Engine's exports of Sentinel-2 name them B2 ... B12: Sentinel-2's when --image-bands says so
    assert image_band_indexes("x.tif", [None] * 4, WANTED, ["B2", "B3", "B4", "B8"]) == (1, 2, 3, 4)
    # a model whose bands are ESA ids finds them too (as it did before names were mapped)
    assert image_band_indexes("x.tif", ["B02", "B03", "B04", "B08"], ["B02", "B03", "B04", "B08"]) == (
        1,
        2,
        3,
        4,
    )
    assert image_band_indexes("x.tif", ["blue", "green", "red", "nir"], ["B08", "B04"]) == (4, 3)


def test_an_image_naming_other_bands_is_refused_not_read_by_position() -> None:
    with pytest.raises(
        InputError, match=r"has no band\(s\) \['nir'\].*its bands are \['red', 'green', 'blue', 'x'\]"
    ):
        image_band_indexes("x.tif", ["red", "green", "blue", "x"], WANTED)
    with pytest.raises(InputError, match=r"lacks band\(s\) \['nir'\] of .*: its bands are \['B04',") as named:
        image_band_indexes("x.tif", ["B04", "B03", "B02", "B11"], WANTED)
    assert "--image-bands" not in str(named.value)  # every band is named: naming them is no advice
    # Landsat's codes are no Sentinel-2 bands (its B5, near infrared, would be Sentinel-2's rededge1)
    for codes in (["SR_B2", "SR_B3", "SR_B4", "SR_B5"], ["B2", "B3", "B4", "B5"]):
        with pytest.raises(InputError, match=r"name all its bands in order with --image-bands"):
            image_band_indexes("x.tif", codes, WANTED)
    assert image_band_indexes("x.tif", [None] * 4, WANTED, ["blue", "green", "red", "nir"]) == (1, 2, 3, 4)


def test_one_digit_codes_in_an_image_are_refused_with_the_flag_that_reads_them_as_sentinel2() -> None:
    """B2 is Sentinel-2's blue in Earth Engine's exports, Landsat 5/7's green elsewhere: never guessed."""
    exported = ["B4", "B3", "B2", "B8", "B11", "B12"]
    with pytest.raises(InputError, match=r"one-digit codes \(B2, B3, B4, B8\)") as raised:
        image_band_indexes("x.tif", exported, WANTED)
    flag = str(raised.value).rsplit("--image-bands ", 1)[1]
    assert flag == "red,green,blue,nir,swir16,swir22"
    assert image_band_indexes("x.tif", exported, WANTED, flag.split(",")) == (3, 2, 1, 4)
    # the review's case: a Landsat 7 image described B1..B4 under a blue, green, red model (read as
    # Sentinel-2 it gave green, red and near infrared as blue, green and red, and a map without a word)
    with pytest.raises(InputError, match="Landsat 5/7's B2 is green"):
        image_band_indexes("l7.tif", ["B1", "B2", "B3", "B4"], ["blue", "green", "red"])
    # ESA's own ids are Sentinel-2's only
    assert image_band_indexes("x.tif", ["B02", "B03", "B04", "B08"], WANTED) == (1, 2, 3, 4)
