"""lulc-stac tests (a package, so helpers import as ``tests.<area>.<module>``)."""
