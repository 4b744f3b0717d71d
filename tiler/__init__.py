"""Tiler: TiTiler app serving classification COGs as coloured tiles, with a legend and a web map."""
