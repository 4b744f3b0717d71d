"""Stateless LULC classifier service, and the model contract every deployable shares."""
