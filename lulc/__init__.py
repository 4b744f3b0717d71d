"""lulc-stac's shared core: contract, classes, features, Sentinel-2 items, grid, pixels, COGs, URL safety.

It imports nothing else of this project; ``service``, ``training`` and ``tiler`` build on it, ``demo`` on all
three. The ``lulc`` command line (``lulc.cli``) finds their commands through entry points.
"""
