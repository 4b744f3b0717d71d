"""The models a service offers: one sub-directory per model id, each loaded once per process and cached."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lulc.errors import ContractError, InputError, LulcError
from lulc.redaction import hide
from service.publish import join_url
from service.runner import ModelRunner

MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""What a model id looks like: a directory name, never a path (no ``/``, no leading dot)."""


class ModelNotFoundError(InputError):
    """No model has this id."""


@dataclass(frozen=True)
class ModelInfo:
    """What ``GET /models`` says about one model; ``error`` is set (and the rest empty) if it cannot load."""

    id: str
    name: str | None = None
    version: str | None = None
    model_type: str | None = None
    bands: list[str] = field(default_factory=list)
    indices: list[str] = field(default_factory=list)
    resolution: float | None = None
    classes: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class ModelProvider(Protocol):
    """Where the service gets its models from (a directory; a test may hand in its own)."""

    def list(self) -> list[ModelInfo]:
        """Every model on offer, sorted by id."""
        ...

    def get(self, model_id: str) -> ModelRunner:
        """The runner of one model (raise ``ModelNotFoundError`` or ``ContractError``)."""
        ...


def describe(model_id: str, runner: ModelRunner) -> ModelInfo:
    """A ``ModelInfo`` from a loaded model's contract."""
    contract = runner.contract
    return ModelInfo(
        id=model_id,
        name=contract.name,
        version=contract.version,
        model_type=contract.provenance.model_type,
        bands=list(contract.inputs.bands),
        indices=list(contract.features.indices),
        resolution=contract.inputs.resolution,
        classes=[c.model_dump(mode="json") for c in contract.classes.classes],
        metrics=dict(contract.provenance.metrics),
    )


class ModelDirectory:
    """Models in ``root/<id>/`` (``model.json`` MLM item or one ``.onnx`` file), loaded with ``load_model``.

    A loaded model is kept until its directory's files change (checked by modification times), so
    each ONNX Runtime session is created once per process.
    """

    def __init__(self, root: str | Path, *, threads: int = 1, public_url: str | None = None) -> None:
        self.root = Path(root)
        self.threads = threads
        self.public_url = public_url
        """URL of ``root`` as clients see it (``models_public_url``): the models' links point under it."""
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[float, ...], ModelRunner]] = {}

    def ids(self) -> list[str]:
        """Model ids: the visible sub-directories of the root (none if it does not exist)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and MODEL_ID.match(p.name))

    def list(self) -> list[ModelInfo]:
        """Every model, loaded (and cached) to read its contract; broken ones carry their error."""
        infos = []
        for model_id in self.ids():
            try:
                infos.append(describe(model_id, self.get(model_id)))
            except LulcError as exc:
                infos.append(ModelInfo(id=model_id, error=str(exc)))
        return infos

    def get(self, model_id: str) -> ModelRunner:
        """The runner of model ``model_id``.

        Raises:
            ModelNotFoundError: not a model id, or no such directory.
            ContractError: the model cannot be loaded (corrupt ONNX, missing or invalid contract).
        """
        from service.runner import load_model

        if not MODEL_ID.match(model_id):
            raise ModelNotFoundError(f"{model_id!r} is not a model id (letters, digits, '.', '_', '-')")
        path = self.root / model_id
        if not path.is_dir():
            known = ", ".join(self.ids()) or "none"
            raise ModelNotFoundError(f"no model {model_id!r} (models: {known})")  # not the server's folder
        stamp = tuple(sorted(p.stat().st_mtime for p in path.iterdir() if p.is_file()))
        with self._lock:
            cached = self._cache.get(model_id)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            public = join_url(self.public_url, model_id) if self.public_url else None
            try:
                runner = load_model(path, threads=self.threads, public_url=public)
            except ContractError as exc:  # answered to clients: the model's id, not the server's paths
                message = str(exc)
                # the relative folder replaced inside the absolute one left the server's path before it in
                # the answer, for half the hash seeds (HTTP review): whole paths, the longer first
                message = hide(message, {str(path.resolve()): model_id, str(path): model_id})
                raise ContractError(message) from exc
            self._cache[model_id] = (stamp, runner)
            return runner
