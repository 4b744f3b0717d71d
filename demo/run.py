"""``lulc demo``: the whole job on the offline demo world (data, model, map), then the web map."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_OUT = Path("demo-output")


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things, and how good the model and the map are."""

    world: Path
    model: Path
    run: Path
    holdout_accuracy: float
    map_accuracy: float


def run_demo(out: Path, size: int | None = None, seed: int = 0, echo: Any = print) -> DemoResult:
    """Generate the demo world, train on it, classify its AOI and assess the map; return where it all is."""
    from demo.world import DEFAULT_SIZE, generate
    from service.engine import classify
    from service.readers import StacReaderFactory
    from service.request import ClassifyRequest
    from service.runner import load_model
    from training.assess import assess_map
    from training.config import load_config
    from training.pipeline import train

    out = out.resolve()
    world_dir = out / "world"
    # generate() overwrites an earlier demo world in place (same bytes) and refuses foreign files
    world = generate(world_dir, size=size or DEFAULT_SIZE, seed=seed)
    echo(f"1/4 demo world: {len(world.item_ids)} Sentinel-2 items, {world.datetime_window} -> {world_dir}")

    model_dir = out / "models" / "demo"
    config = load_config(world.training_config, {"out": str(model_dir)})
    trained = train(config)
    holdout = float(trained.metrics["holdout"]["overall_accuracy"])
    echo(
        f"2/4 model: {trained.contract.provenance.model_type} "
        f"hold-out accuracy {holdout:.1%} -> {trained.out}"
    )

    run_dir = out / "runs" / "demo"
    request = ClassifyRequest(aoi=json.loads(world.aoi.read_text()), datetime=world.datetime_window)
    result = classify(request, load_model(trained.out), StacReaderFactory(str(world.catalog)), run_dir)
    echo(f"3/4 map: {result.classes}")

    assessment = assess_map(result.classes, world.validation_points, "label")
    map_accuracy = float(assessment["overall_accuracy"])
    echo(f"4/4 map accuracy on {world.validation_points.name}: {map_accuracy:.1%} (Olofsson et al. 2014)")
    return DemoResult(world_dir, trained.out, run_dir, holdout, map_accuracy)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the world, model and map.")] = DEFAULT_OUT,
    size: Annotated[
        int | None, typer.Option(help="Demo world edge in pixels (default: the generator's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the demo world and the model.")] = 0,
    serve: Annotated[bool, typer.Option(help="Serve the web map when done.")] = True,
    host: Annotated[str, typer.Option(help="Interface the web map listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the web map listens on.")] = 8080,
) -> None:
    """Run the whole job on the offline demo world: generate, train, classify, assess, then serve the map."""
    run_demo(out, size, seed, echo=typer.echo)
    if not serve:
        return
    import uvicorn

    from tiler.app import create_app
    from tiler.settings import TilerSettings

    settings = TilerSettings(
        host=host,
        port=port,
        allow=[str(out.resolve())],
        runs_dir=out.resolve() / "runs",
        models_dir=out.resolve() / "models",
    )
    typer.echo(f"web map: http://{host}:{port}/  (Ctrl-C to stop)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``lulc`` program."""
    app.command("demo")(demo)
