"""Benchmarks of lulc-stac against the tutorial workflow and bare TiTiler (``make bench``)."""
