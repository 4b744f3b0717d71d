"""Model runners: the ONNX Runtime session (one per process) behind a small Protocol, and model loading."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from lulc.contract import ModelContract, contract_from_metadata
from lulc.decision import decide_labels
from lulc.errors import ContractError, InputError
from lulc.local_files import read_json
from lulc.onnx_runtime import onnxruntime
from lulc.urls import missing_file
from service.graph_outputs import without_outputs
from service.publish import join_url


@dataclass(frozen=True)
class Prediction:
    """Labels (class values, uint8) and, when the model gives them, class probabilities per pixel."""

    labels: npt.NDArray[np.uint8]
    probabilities: npt.NDArray[np.float32] | None
    dissimilarity: npt.NDArray[np.float32] | None = None
    """Each pixel's dissimilarity index (the contract's ``applicability.output``), when the graph has it."""


@runtime_checkable
class ModelRunner(Protocol):
    """A model with its contract that turns a feature matrix ``(n, n_features)`` into labels."""

    @property
    def contract(self) -> ModelContract:
        """The model's contract."""
        ...

    @property
    def origin(self) -> str:
        """Where the model came from (a path), for messages and provenance."""
        ...

    @property
    def item_href(self) -> str | None:
        """Href of the model's STAC (MLM) item, if known, for the ``derived_from`` link."""
        ...

    def predict(self, features: npt.NDArray[np.float32], *, dissimilarity: bool = False) -> Prediction:
        """Labels, probabilities (the DI when asked) of ``features``; safe to call from several threads."""
        ...


CHUNK_ROWS = 8_192
"""Rows per ONNX Runtime call. An SVM's kernel matrix (support vectors x rows) is built for a whole call, so
a 512 x 512 block in one call would hold hundreds of MiB per thread; 8,192 rows keep each call's tensors in
the CPU caches (the dense SVM graph runs fastest between 2,048 and 8,192 rows; tree ensembles do not care).
A pixel's result does not depend on the chunk it is in (``tests/service/test_runner.py``)."""


class OnnxRunner:
    """An ONNX model and its embedded contract, run with ONNX Runtime on the CPU.

    The session is created once per process (lazily, so the runner pickles as its path and is rebuilt
    on a Dask worker) and shared by every thread: ``InferenceSession.run`` is thread-safe. With
    ``threads=1`` each call runs on one core and parallelism comes from running blocks concurrently.
    The pickle carries the file's SHA-256 too: a worker whose file at that path differs (a model version
    its disk has not caught up with) refuses to run it, where it mapped with its own model under the
    client's name (review).
    """

    def __init__(self, path: str | Path, *, threads: int = 1, item_href: str | None = None) -> None:
        if threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        self.path = Path(path)
        self.threads = threads
        self._item_href = item_href
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._without_di: Any | None = None
        self._expected_sha256: str | None = None
        self._load()

    def __getstate__(self) -> dict[str, Any]:
        digest = self._load().sha256
        return {"path": self.path, "threads": self.threads, "item_href": self._item_href, "sha256": digest}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.threads = state["threads"]
        self._item_href = state["item_href"]
        self._expected_sha256 = state.get("sha256")
        self._lock = threading.Lock()
        self._loaded = None
        self._without_di = None

    @property
    def origin(self) -> str:
        """The ONNX file's path."""
        return str(self.path)

    @property
    def item_href(self) -> str | None:
        """The MLM item's href, when the model was loaded from a model directory or item."""
        return self._item_href

    @property
    def contract(self) -> ModelContract:
        """The contract embedded in the ONNX metadata."""
        return self._load().contract

    def _load(self) -> _Loaded:
        """The session and its contract, opened on first use (ContractError if the file is no model)."""
        with self._lock:
            if self._loaded is None:
                loaded = _open_session(self.path, self.threads)
                if self._expected_sha256 is not None and loaded.sha256 != self._expected_sha256:
                    raise ContractError(
                        f"the model file {self.path} here (sha256 {loaded.sha256[:12]}) is not the one the "
                        f"run was started with (sha256 {self._expected_sha256[:12]}): deploy the same model "
                        "version to every Dask worker"
                    )
                self._loaded = loaded
            return self._loaded

    def _session(self, loaded: _Loaded, dissimilarity: bool) -> Any:
        """The session to run: the whole graph, or, when the DI is not wanted, the graph without it.

        ONNX Runtime runs every node whichever outputs are fetched, so a run without ``aoa.tif`` gets a
        second session on the graph cut down to the other outputs (``service.graph_outputs``), made on
        first use: it does not pay for the DI.
        """
        if dissimilarity or loaded.model_bytes is None:
            return loaded.session
        with self._lock:
            if self._without_di is None:
                pruned = without_outputs(loaded.model_bytes, [loaded.di_output])
                self._without_di = _inference_session(pruned, self.threads)
            return self._without_di

    def predict(self, features: npt.NDArray[np.float32], *, dissimilarity: bool = False) -> Prediction:
        """Run the graph on ``features`` and decide labels per the contract (and fetch the DI if asked)."""
        loaded = self._load()
        contract = loaded.contract
        if features.shape[0] == 0:
            n_classes = len(contract.outputs.class_order)
            return Prediction(np.empty(0, np.uint8), np.empty((0, n_classes), np.float32))
        features = np.asarray(features, dtype=np.float32)  # the graph's input type (float64 was refused)
        if not np.isfinite(features).all():
            # a NaN row's probabilities are NaN and its label the first class: the engine drops such pixels
            # (blocks.valid_pixels) before calling, a notebook may not
            raise InputError("features hold NaN or infinite values: pass the valid pixels only")
        session = self._session(loaded, dissimilarity)
        outputs = contract.outputs
        wanted = [name for name in (outputs.label, outputs.probabilities) if name in loaded.outputs]
        if outputs.decision == "probabilities" and outputs.probabilities in wanted:
            wanted = [outputs.probabilities]  # the label comes from the probabilities: skip the graph's own
        di_name = loaded.di_output or None
        if dissimilarity and di_name is not None:
            wanted = [*wanted, di_name]
        name = loaded.input_name
        parts = [
            session.run(wanted, {name: np.ascontiguousarray(features[start : start + CHUNK_ROWS])})
            for start in range(0, features.shape[0], CHUNK_ROWS)
        ]
        result = {
            key: np.concatenate([np.asarray(part[k]) for part in parts]) for k, key in enumerate(wanted)
        }
        probabilities = result.get(outputs.probabilities)
        if probabilities is not None:
            probabilities = _probability_matrix(probabilities, len(outputs.class_order), self.path)
        if outputs.decision == "probabilities" and probabilities is not None:
            labels = decide_labels(probabilities, outputs.class_order)
        elif outputs.label in result:
            labels = np.asarray(result[outputs.label]).reshape(-1).astype(np.uint8)
        else:
            raise ContractError(
                f"{self.path} has neither output {outputs.label!r} nor {outputs.probabilities!r}"
            )
        raw_di = result.get(di_name) if di_name is not None else None
        di = np.asarray(raw_di, dtype=np.float32).reshape(-1) if raw_di is not None else None
        return Prediction(labels, probabilities, di)


def _probability_matrix(value: Any, n_classes: int, path: Path) -> npt.NDArray[np.float32]:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != n_classes:
        raise ContractError(
            f"{path}: probabilities output has shape {array.shape}, expected (n, {n_classes}); "
            "export the model without ZipMap"
        )
    return array


def _inference_session(model: str | bytes, threads: int) -> Any:
    """An ONNX Runtime CPU session on a model file (path) or serialised model, ``threads`` per call."""
    ort = onnxruntime()

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class _Loaded:
    """A model as opened once: its session, its contract, what the graph offers."""

    session: Any
    contract: ModelContract
    input_name: str
    outputs: frozenset[str]
    di_output: str
    """The graph's DI output, or "" when it has none."""
    model_bytes: bytes | None
    """The bytes the session was made from, kept only when the graph has a DI output (to cut it out)."""
    sha256: str
    """Of the file's bytes: which model this is, wherever it is opened."""


def _open_session(path: Path, threads: int) -> _Loaded:
    if not path.is_file():
        raise ContractError(missing_file("model file", path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContractError(f"model file {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        session = _inference_session(data, threads)
    except Exception as exc:  # onnxruntime raises its own pybind exception types (InvalidProtobuf, Fail)
        raise ContractError(f"{path} is not a readable ONNX model: {_first_line(exc)}") from exc
    contract = contract_from_metadata(dict(session.get_modelmeta().custom_metadata_map), str(path))
    n_features = len(contract.feature_names)
    shape = session.get_inputs()[0].shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != n_features):
        raise ContractError(
            f"{path}: the graph's input has shape {shape} but the contract lists {n_features} features "
            f"({contract.feature_names})"
        )
    outputs = frozenset(o.name for o in session.get_outputs())
    di = contract.applicability.output if contract.applicability is not None else ""
    di = di if di in outputs else ""
    return _Loaded(
        session,
        contract,
        session.get_inputs()[0].name,
        outputs,
        di,
        data if di else None,
        hashlib.sha256(data).hexdigest(),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_model(path: str | Path, *, threads: int = 1, public_url: str | None = None) -> OnnxRunner:
    """An ``OnnxRunner`` from a model directory, its ``model.onnx``, or its MLM item ``model.json``.

    ``public_url`` is the URL of the model's folder as clients see it: the runner's ``item_href`` (the
    output items' ``derived_from`` link to the model) is then the item's (or the ONNX file's) name under
    it instead of its local path.

    Raises:
        ContractError: The path does not hold a model, the ONNX file is corrupt, or its contract is
            missing, invalid or of an unsupported schema version.
    """

    def href(local: Path) -> str:
        return join_url(public_url, local.name) if public_url else str(local.resolve())

    path = Path(path)
    if path.is_dir():
        onnx_files = sorted(path.glob("*.onnx"))
        item = path / "model.json"
        if item.is_file():
            return _from_item(item, threads, href(item))
        if len(onnx_files) != 1:
            raise ContractError(f"model directory {path} must hold model.json or exactly one .onnx file")
        return OnnxRunner(
            onnx_files[0], threads=threads, item_href=href(onnx_files[0]) if public_url else None
        )
    if not path.exists():
        raise ContractError(missing_file("model", path))
    if path.suffix == ".json":
        return _from_item(path, threads, href(path))
    item = path.parent / "model.json"
    if item.is_file():
        return OnnxRunner(path, threads=threads, item_href=href(item))
    return OnnxRunner(path, threads=threads, item_href=href(path) if public_url else None)


def _from_item(item_path: Path, threads: int, item_href: str | None) -> OnnxRunner:
    item = read_json(item_path, "model item", ContractError)
    assets = item.get("assets", {}) if isinstance(item, dict) else {}
    hrefs = [
        a["href"]
        for a in assets.values()
        if isinstance(a, dict) and "mlm:model" in a.get("roles", []) and isinstance(a.get("href"), str)
    ]
    if not hrefs:
        raise ContractError(f"STAC item {item_path} has no asset with role 'mlm:model'")
    href = hrefs[0]
    onnx = Path(href) if Path(href).is_absolute() else (item_path.parent / href)
    return OnnxRunner(onnx.resolve(), threads=threads, item_href=item_href)
