"""The model contract, class table, feature function and decision rule: one definition for every part."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lulc.classes import NODATA, ClassTable, load_class_table
from lulc.contract import (
    METADATA_KEY,
    SCHEMA_VERSION,
    Features,
    Inputs,
    ModelContract,
    Outputs,
    Provenance,
    contract_from_json,
    contract_from_metadata,
    contract_from_mlm_item,
    load_contract,
    parse_contract,
    to_mlm_item,
)
from lulc.decision import decide_labels, top_probability
from lulc.errors import ContractError, InputError
from lulc.features import compute_features, feature_names
from tests.support.stac_validation import assert_valid_stac, stac_errors

CLASSES_YAML = """
classes:
  - {value: 1, name: Water, color: "#1F78B4", description: Open water}
  - {value: 2, name: Forest, color: "#33a02c"}
  - {value: 4, name: Built-up, color: "#e31a1c"}
"""


@pytest.fixture
def table(tmp_path: Path) -> ClassTable:
    path = tmp_path / "classes.yaml"
    path.write_text(CLASSES_YAML)
    return load_class_table(path)


@pytest.fixture
def contract(table: ClassTable) -> ModelContract:
    return ModelContract(
        name="demo",
        version="abc123",
        inputs=Inputs(bands=["blue", "green", "red", "nir", "swir16"], resolution=10),
        features=Features(indices=["ndvi", "ndwi", "ndbi"]),
        classes=table,
        outputs=Outputs(class_order=[1, 2, 4]),
        provenance=Provenance(model_type="RandomForestClassifier", bbox=[140.0, 36.0, 140.1, 36.1]),
    )


def test_class_table_reads_the_shared_yaml_format(table: ClassTable) -> None:
    assert table.values == [1, 2, 4]
    assert table.by_name("Water").color == "#1f78b4"  # normalised to lower case
    assert table.by_value(4).rgba == (0xE3, 0x1A, 0x1C, 255)
    assert table.colormap()[NODATA] == (0, 0, 0, 0)
    assert table.category_names() == ["", "Water", "Forest", "", "Built-up"]
    again = ClassTable.from_stac(table.to_stac())
    assert again.colormap() == table.colormap()


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("classes: [{value: 1, name: A, color: '#000000'}, {value: 1, name: B, color: '#000000'}]", "unique"),
        ("classes: [{value: 255, name: A, color: '#000000'}]", "less than or equal to 254"),
        ("classes: [{value: 1, name: A, color: red}]", "#rrggbb"),
        ("classes: []", "at least 1"),
    ],
)
def test_bad_class_tables_name_the_file_and_the_fault(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(InputError, match=message) as info:
        load_class_table(path)
    assert str(path) in str(info.value)


def test_class_table_from_labels_numbers_text_labels_in_sorted_order() -> None:
    table = ClassTable.from_labels(["water", "urban", "forest", "water"])
    assert [(c.value, c.name) for c in table.classes] == [(1, "forest"), (2, "urban"), (3, "water")]
    numeric = ClassTable.from_labels([4.0, 1.0, 2.0, 2.0])
    assert numeric.values == [1, 2, 4]
    assert len({c.color for c in table.classes}) == 3


def test_class_table_from_labels_refuses_codes_mixed_with_names_and_folds_spellings() -> None:
    """Review: [3, 10, "other"] numbered the labels as text: code 3 became pixel value 2, 10 became 1."""
    with pytest.raises(InputError, match=r"mix class codes \(\[3, 10\]\) and names \(\['other'\]\)"):
        ClassTable.from_labels([3, 10, 10, 3, "other"])
    folded = ClassTable.from_labels(["Water", "water ", "Forest"])
    assert folded.names == ["Forest", "Water"]  # one class per name, as labels are matched to names


def test_features_are_bands_then_indices_in_float32() -> None:
    bands = ["green", "red", "nir", "swir16"]
    refl = np.array([[0.1, 0.0], [0.05, 0.0], [0.4, 0.0], [0.2, 0.0]], dtype=np.float64)
    out = compute_features(refl, bands, ["ndvi", "ndwi", "ndbi"])
    assert out.dtype == np.float32
    assert out.shape == (2, 7)
    assert feature_names(bands, ["ndvi", "ndwi", "ndbi"])[4:] == ["ndvi", "ndwi", "ndbi"]
    np.testing.assert_allclose(out[0, :4], [0.1, 0.05, 0.4, 0.2], rtol=1e-6)
    np.testing.assert_allclose(out[0, 4], (0.4 - 0.05) / 0.45, rtol=1e-6)
    np.testing.assert_allclose(out[0, 5], (0.1 - 0.4) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(out[0, 6], (0.2 - 0.4) / 0.6, rtol=1e-6)
    assert np.all(out[1] == 0)  # zero denominators give 0, not nan


def test_features_keep_the_spatial_shape() -> None:
    refl = np.random.default_rng(0).random((4, 3, 5), dtype=np.float32)
    out = compute_features(refl, ["blue", "green", "red", "nir"], ["ndvi"])
    assert out.shape == (3, 5, 5)
    np.testing.assert_array_equal(out[..., :4], np.moveaxis(refl, 0, -1))


def test_features_refuse_indices_the_bands_cannot_give() -> None:
    with pytest.raises(ContractError, match="swir16"):
        compute_features(np.zeros((2, 4), np.float32), ["red", "nir"], ["ndbi"])
    with pytest.raises(ContractError, match="unknown spectral index"):
        compute_features(np.zeros((2, 4), np.float32), ["red", "nir"], ["evi9"])
    with pytest.raises(ContractError, match="3 bands"):
        compute_features(np.zeros((3, 4), np.float32), ["red", "nir"], [])


def test_contract_round_trips_through_onnx_metadata_and_mlm_item(contract: ModelContract) -> None:
    text = contract.to_json()
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION
    assert contract_from_metadata({METADATA_KEY: text}, "m.onnx") == contract
    item = to_mlm_item(contract, "model.onnx", "1220" + "0" * 64, "2024-01-01T00:00:00Z")
    assert item["properties"]["mlm:input"][0]["bands"] == contract.feature_names
    classes = item["properties"]["mlm:output"][0]["classification:classes"]
    assert [c["value"] for c in classes] == [1, 2, 4]
    assert item["assets"]["model"]["roles"] == ["mlm:model"]
    assert item["bbox"] == [140.0, 36.0, 140.1, 36.1]
    assert contract_from_mlm_item(item, "model.json") == contract


def test_contract_files_load_from_mlm_items_and_bare_json(tmp_path: Path, contract: ModelContract) -> None:
    bare = tmp_path / "contract.json"
    bare.write_text(contract.to_json())
    item = tmp_path / "model.json"
    item.write_text(json.dumps(to_mlm_item(contract, "model.onnx", "1220", "2024-01-01T00:00:00Z")))
    assert load_contract(bare) == load_contract(item) == contract
    with pytest.raises(ContractError, match="does not exist"):
        load_contract(tmp_path / "missing.json")


def test_a_newer_schema_is_refused_clearly(contract: ModelContract) -> None:
    data = json.loads(contract.to_json())
    data["schema_version"] = "2.0"
    with pytest.raises(ContractError, match=r"schema version 2\.0.*1\.x"):
        parse_contract(data, "future.onnx")
    data["schema_version"] = "1.7"  # a minor version is readable
    assert parse_contract(data, "minor.onnx").name == "demo"


def test_contracts_that_cannot_be_honoured_are_refused(contract: ModelContract) -> None:
    data = json.loads(contract.to_json())
    data["features"]["indices"] = ["mndwi", "ndbi", "bogus"]
    with pytest.raises(ContractError, match="bogus"):
        parse_contract(data, "m.onnx")
    data = json.loads(contract.to_json())
    data["outputs"]["class_order"] = [1, 2, 3]
    with pytest.raises(ContractError, match="class_order"):
        parse_contract(data, "m.onnx")
    with pytest.raises(ContractError, match="no lulc-stac model contract"):
        contract_from_metadata({}, "plain.onnx")
    with pytest.raises(ContractError, match="not valid JSON"):
        contract_from_json("{nope", "m.onnx")
    with pytest.raises(ContractError, match=r"needs band\(s\) \['swir16'\]"):
        contract.require_bands({"blue", "green", "red", "nir"}, "item X")


def test_decision_rounds_then_takes_the_first_maximum() -> None:
    probs = np.array(
        [
            [0.2, 0.5, 0.3],
            [0.5, 0.5 + 1e-9, 0.0],  # float noise between runtimes: still a tie, first column wins
            [0.1, 0.2, 0.7],
        ]
    )
    np.testing.assert_array_equal(decide_labels(probs, [1, 2, 4]), [2, 1, 4])
    np.testing.assert_array_equal(top_probability(probs), [50, 50, 70])


def test_the_mlm_item_validates_against_core_and_its_extensions(contract: ModelContract) -> None:
    item = to_mlm_item(contract, "model.onnx", "1220" + "0" * 64, "2024-01-01T00:00:00Z")
    assert_valid_stac(item, "MLM item")
    bands = item["assets"]["model"]["raster:bands"]
    assert [b["name"] for b in bands] == contract.feature_names  # MLM 1.4: the input's bands are described
    classes = item["properties"]["mlm:output"][0]["classification:classes"]
    assert all(c["title"] for c in classes)
    # Control: without the band descriptions MLM 1.4 refuses the item.
    del item["assets"]["model"]["raster:bands"]
    assert any("mlm" in p for p in stac_errors(item))


def test_a_model_trained_across_the_antimeridian_outlines_its_imagery_in_two_parts(
    contract: ModelContract,
) -> None:
    """RFC 7946: a bbox with west above east crosses 180°, and its polygon is split there.

    The box as one ring ran the long way round the world, from -179.9 to 179.9.
    """
    across = contract.model_copy(
        update={"provenance": contract.provenance.model_copy(update={"bbox": [179.9, -17.0, -179.9, -16.9]})}
    )
    item = to_mlm_item(across, "model.onnx", "1220" + "0" * 64, "2024-01-01T00:00:00Z")
    assert_valid_stac(item, "MLM item")
    assert item["bbox"] == [179.9, -17.0, -179.9, -16.9]
    assert item["geometry"]["type"] == "MultiPolygon"
    assert sorted(ring[0][0][0] for ring in item["geometry"]["coordinates"]) == [-180.0, 179.9]
    # control: the long way round is refused by the same validation
    long_way = [[179.9, -17.0], [-179.9, -17.0], [-179.9, -16.9], [179.9, -16.9], [179.9, -17.0]]
    assert any(
        "outside bbox" in p
        for p in stac_errors({**item, "geometry": {"type": "Polygon", "coordinates": [long_way]}})
    )


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("inputs", "radiometry", "scale"), float("nan"), "scale"),
        (("inputs", "radiometry", "offset"), float("inf"), "offset"),
        (("inputs", "resolution"), float("inf"), "resolution"),
        (("inputs", "mask_scl"), [-3, 1], "mask_scl"),
        (("inputs", "mask_scl"), [3, 999], "mask_scl"),
    ],
)
def test_values_a_model_cannot_run_with_are_refused(
    contract: ModelContract, path: tuple[str, ...], value: object, needle: str
) -> None:
    """Review: a NaN scale made every --image pixel nodata without an error; SCL classes are 0-11."""
    data = json.loads(contract.to_json())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ContractError, match=needle):
        parse_contract(json.loads(json.dumps(data)), "odd.onnx")
