"""Area of applicability and conformal class sets: the numbers the methods define, and the ONNX DI output."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier

from training.aoa import DI_OUTPUT, add_dissimilarity_output, fit_applicability, upper_whisker
from training.conformal import calibrate, coverage_by_class, set_bands


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # R: boxplot.stats(c(1:9, 100))$stats[5] == 9 ; boxplot.stats(1:10)$stats[5] == 10
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 100], 9.0),
        (list(range(1, 11)), 10.0),
        # R: boxplot.stats(c(0.1, 0.2, 0.2, 0.3, 0.9, 2.5))$stats[5] == 0.9 (fivenum 0.1 0.2 0.25 0.9 2.5)
        ([0.1, 0.2, 0.2, 0.3, 0.9, 2.5], 0.9),
    ],
)
def test_upper_whisker_is_r_boxplot_stats(values: list[float], expected: float) -> None:
    assert upper_whisker(values) == pytest.approx(expected)


def clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.1, 0.3, 0.05], [0.3, 0.1, 0.2], [0.05, 0.05, 0.4]])
    labels = np.repeat([0, 1, 2], 60)
    features = centres[labels] + rng.normal(0, 0.02, size=(labels.size, 3))
    folds = np.tile(np.arange(5), labels.size // 5)
    return features.astype(np.float32), labels, folds


def test_training_di_uses_the_nearest_sample_of_another_fold() -> None:
    features, _, folds = clusters()
    aoa = fit_applicability(features, folds, [1.0, 2.0, 0.5])
    x = aoa.transform(features)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    n = len(x)
    assert aoa.mean_distance == pytest.approx(d.sum() / (n * (n - 1)), rel=1e-9)
    brute = np.array([d[i, folds != folds[i]].min() for i in range(n)]) / aoa.mean_distance
    assert np.allclose(aoa.training_di, brute, atol=1e-9)
    assert aoa.threshold == pytest.approx(upper_whisker(brute))


def test_training_pixels_are_inside_and_a_far_pixel_is_outside() -> None:
    features, _, folds = clusters()
    aoa = fit_applicability(features, folds, [1.0, 1.0, 1.0])
    assert np.all(aoa.dissimilarity(features) < aoa.threshold)
    far = np.array([[0.9, 0.9, 0.9]], dtype=np.float32)
    assert aoa.dissimilarity(far)[0] > 5 * aoa.threshold


def test_importance_weights_decide_what_counts_as_dissimilar() -> None:
    """A shift in a feature of no importance stays inside the AOA; the same shift in a weighted one leaves."""
    features, _, folds = clusters()
    aoa = fit_applicability(features, folds, [1.0, 1.0, 0.0])
    shifted = features[:1].copy()
    shifted[0, 2] += 1.0
    assert aoa.dissimilarity(shifted)[0] < aoa.threshold
    shifted = features[:1].copy()
    shifted[0, 0] += 1.0
    assert aoa.dissimilarity(shifted)[0] > aoa.threshold


def test_the_onnx_di_output_matches_numpy_and_leaves_the_labels_alone() -> None:
    features, labels, folds = clusters()
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(features, labels)
    onx = to_onnx(
        model, features[:1], options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3}
    )
    aoa = fit_applicability(features, folds, [1.0, 2.0, 0.5])
    with_di = add_dissimilarity_output(onx, aoa)
    rng = np.random.default_rng(1)
    pixels = np.concatenate([features, rng.uniform(0, 1, size=(500, 3)).astype(np.float32)])
    plain = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    both = ort.InferenceSession(with_di.SerializeToString(), providers=["CPUExecutionProvider"])
    name = plain.get_inputs()[0].name
    base = plain.run(None, {name: pixels})
    outputs = both.run(None, {name: pixels})
    assert [o.name for o in both.get_outputs()][-1] == DI_OUTPUT
    assert all(np.array_equal(a, b) for a, b in zip(base, outputs[:-1], strict=True))
    expected = aoa.dissimilarity(pixels)
    error = np.abs(outputs[-1] - expected)
    # float32 cancellation in |x|² + |s|² - 2 x·s is a few 1e-4 DI near a training sample (the square root
    # magnifies it), far below the threshold; away from the samples the two agree to 1e-4 relative
    assert error.max() < 0.01 * aoa.threshold
    far = expected > aoa.threshold
    assert np.all(error[far] < 1e-4 * expected[far])
    assert np.array_equal(outputs[-1] > aoa.threshold, expected > aoa.threshold)


def test_conformal_threshold_is_the_finite_sample_quantile() -> None:
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3], [0.45, 0.55]])
    truth = np.array([0, 0, 1, 1, 0])
    sets = calibrate(proba, truth, coverage=0.5)
    # scores 0.1 0.4 0.2 0.7 0.55 -> sorted 0.1 0.2 0.4 0.55 0.7; rank ceil(6 * 0.5) = 3
    assert sets.threshold == pytest.approx(0.4)
    with pytest.raises(ValueError, match="cannot give 90% coverage"):
        calibrate(proba, truth, coverage=0.9)


def test_conformal_sets_reach_their_coverage_on_exchangeable_data() -> None:
    rng = np.random.default_rng(7)
    n, k = 6000, 4
    proba = rng.dirichlet(np.full(k, 0.7), size=n)
    truth = np.array([rng.choice(k, p=p) for p in proba])
    sets = calibrate(proba[:3000], truth[:3000], coverage=0.9)
    members = sets.members(proba[3000:])
    report = coverage_by_class(members, truth[3000:], ["a", "b", "c", "d"])
    assert report["coverage"] == pytest.approx(0.9, abs=0.02)
    count, bits = set_bands(members)
    assert np.array_equal(count, members.sum(axis=1))
    decoded = (bits[:, None] >> np.arange(k)) & 1
    assert np.array_equal(decoded.astype(bool), members)
