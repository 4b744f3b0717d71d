"""The offline demo world (a synthetic Sentinel-2 landscape, its STAC catalog, points) and `lulc demo`."""
