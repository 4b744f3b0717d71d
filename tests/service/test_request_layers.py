"""Which optional maps a run writes: what was asked for, and what the model carries (request_layers)."""

from __future__ import annotations

import numpy as np

from lulc.class_sets import MAX_CLASSES, set_bands
from lulc.classes import NODATA, ClassTable
from lulc.contract import Applicability, ClassSets, ModelContract
from service.engine import request_layers
from service.request import ClassifyRequest
from tests.service.engine_support import make_contract

SETS = ClassSets(coverage=0.9, min_probability=0.2)


def _calibrated(n_classes: int) -> ModelContract:
    labels = list(range(1, n_classes + 1))
    contract = make_contract(ClassTable.from_labels(labels), labels, bands=("red", "nir"), model_type="rf")
    return contract.model_copy(update={"class_sets": SETS, "applicability": Applicability(threshold=0.3)})


def test_a_calibrated_model_gets_its_trust_maps_by_default_and_not_when_switched_off() -> None:
    contract = _calibrated(MAX_CLASSES)
    assert request_layers(ClassifyRequest(aoi=None, datetime=None), contract) == {"aoa", "sets"}
    off = ClassifyRequest(aoi=None, datetime=None, aoa=False, sets=False, probabilities=True)
    assert request_layers(off, contract) == {"probabilities"}
    plain = contract.model_copy(update={"class_sets": None, "applicability": None})
    assert request_layers(ClassifyRequest(aoi=None, datetime=None), plain) == frozenset()


def test_a_model_of_more_classes_than_a_set_bitmask_holds_runs_without_a_sets_map() -> None:
    """A uint8 bitmask holds 7 classes: an 8-class model must still classify by default, without sets.tif."""
    layers = request_layers(ClassifyRequest(aoi=None, datetime=None), _calibrated(MAX_CLASSES + 1))
    assert layers == {"aoa"}


def test_a_set_of_every_class_is_not_the_nodata_value() -> None:
    """With 8 bits, the set of all 8 classes was bitmask 255: read as nodata, an ambiguous pixel vanished."""
    everything = set_bands(np.ones((1, MAX_CLASSES), dtype=bool))
    assert everything[:, 0].tolist() == [MAX_CLASSES, 2**MAX_CLASSES - 1]
    assert NODATA not in everything
