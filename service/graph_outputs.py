"""An ONNX graph cut down to some of its outputs, so ONNX Runtime does not compute the others.

ONNX Runtime runs every node of a graph whichever outputs a call fetches: a model whose graph carries the
dissimilarity index (the area of applicability) would pay for it on a run that does not write ``aoa.tif``.
``without_outputs`` keeps only the nodes some kept output depends on (through the subgraphs of ``If`` and
``Loop`` nodes too, whose bodies may read any name of the outer graph), and only their initializers. The
kept outputs are computed by the very same nodes, so they are the same numbers.

``onnx.utils.Extractor`` does the same for graphs without subgraphs, but it does not follow the names a
subgraph reads from the outer scope (the SVM graph's coupling ``If``): the graph it returns is invalid.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any


def without_outputs(model_bytes: bytes, drop: Collection[str]) -> bytes:
    """The serialised model ``model_bytes`` without the outputs named in ``drop`` and what only they need.

    Raises:
        ValueError: ``drop`` names an output the graph does not have, or every output.
    """
    import onnx

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    names = [output.name for output in graph.output]
    unknown = sorted(set(drop) - set(names))
    if unknown:
        raise ValueError(f"the graph has no output {', '.join(unknown)} (it has {', '.join(names)})")
    kept_outputs = [output for output in graph.output if output.name not in drop]
    if not kept_outputs:
        raise ValueError("cannot drop every output of a graph")
    needed = {output.name for output in kept_outputs}
    kept_nodes = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept_nodes.append(node)
            needed.update(node.input)
            needed.update(_names_read_in_subgraphs(node))
    kept_initializers = [init for init in graph.initializer if init.name in needed]
    del graph.node[:]
    graph.node.extend(reversed(kept_nodes))
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers)
    del graph.output[:]
    graph.output.extend(kept_outputs)
    kept_value_info = [info for info in graph.value_info if info.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(kept_value_info)
    return bytes(model.SerializeToString())


def _names_read_in_subgraphs(node: Any) -> set[str]:
    """Every name the nodes of ``node``'s subgraphs (at any depth) take as input."""
    names: set[str] = set()
    for graph in _subgraphs(node):
        for inner in graph.node:
            names.update(inner.input)
            names.update(_names_read_in_subgraphs(inner))
    return names


def _subgraphs(node: Any) -> Iterable[Any]:
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield attribute.g
        yield from attribute.graphs
