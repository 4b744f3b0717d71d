"""Test helpers shared by every area: loopback HTTP servers, a throw-away pgstac API."""
