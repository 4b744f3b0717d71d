"""ServiceSettings: environment variables, list parsing, documentation, nothing read at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from lulc.settings_doc import env_names, settings_table
from service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("LULC_SERVICE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_every_field_is_documented_and_prefixed() -> None:
    names = env_names(ServiceSettings)
    assert names  # a settings class with fields
    for field_name, field in ServiceSettings.model_fields.items():
        assert field.description, f"{field_name} has no description"
        assert names[field_name] == f"LULC_SERVICE_{field_name.upper()}"
    table = settings_table(ServiceSettings)
    assert "`LULC_SERVICE_MAX_AOI_KM2`" in table
    assert "`LULC_SERVICE_S3_ENDPOINT`" in table


def test_environment_variables_are_read(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("LULC_SERVICE_MODELS_DIR", str(tmp_path / "models"))
    clean_env.setenv("LULC_SERVICE_MAX_AOI_KM2", "12.5")
    clean_env.setenv("LULC_SERVICE_SYNC_MAX_KM2", "0.5")
    clean_env.setenv("LULC_SERVICE_MAX_CONCURRENT_JOBS", "3")
    clean_env.setenv("LULC_SERVICE_AUTH_TOKEN", "s3cret")
    clean_env.setenv("LULC_SERVICE_OUTPUT_URL", "s3://bucket/prefix")
    clean_env.setenv("LULC_SERVICE_S3_SECRET_ACCESS_KEY", "abc")
    clean_env.setenv("LULC_SERVICE_LOG_LEVEL", "DEBUG")
    settings = ServiceSettings()
    assert settings.models_dir == tmp_path / "models"
    assert settings.max_aoi_km2 == 12.5
    assert settings.sync_max_km2 == 0.5
    assert settings.max_concurrent_jobs == 3
    assert settings.auth_token is not None
    assert settings.auth_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)  # secrets never end up in logs
    assert settings.output_url == "s3://bucket/prefix"
    assert settings.log_level == "debug"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.example.com, 127.0.0.1:8080", ["a.example.com", "127.0.0.1:8080"]),
        ('["https://h.example/p/", "*.example.org"]', ["https://h.example/p/", "*.example.org"]),
        ("", []),
    ],
)
def test_lists_accept_json_or_commas(clean_env: pytest.MonkeyPatch, raw: str, expected: list[str]) -> None:
    clean_env.setenv("LULC_SERVICE_ALLOWED_HOSTS", raw)
    clean_env.setenv("LULC_SERVICE_CORS_ORIGINS", raw)
    settings = ServiceSettings()
    assert settings.allowed_hosts == expected
    assert settings.cors_origins == expected


def test_bad_values_are_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LULC_SERVICE_MAX_CONCURRENT_JOBS", "0")
    with pytest.raises(ValidationError, match="max_concurrent_jobs"):
        ServiceSettings()


def test_defaults_without_environment(clean_env: pytest.MonkeyPatch) -> None:
    settings = ServiceSettings()
    assert settings.auth_token is None
    assert settings.output_url is None
    assert settings.sync_max_km2 < settings.max_aoi_km2
    assert settings.local_folders == []


def test_importing_the_app_reads_no_settings() -> None:
    """A broken environment breaks ServiceSettings() but not `import service.app` / `service.handler`."""
    env = {**os.environ, "LULC_SERVICE_PORT": "not-a-port", "LULC_SERVICE_MAX_AOI_KM2": "huge"}
    code = "import service.app, service.handler, service.serve_command; print('imported')"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "imported" in done.stdout
    code = "from service.settings import ServiceSettings; ServiceSettings()"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0
    assert "port" in done.stderr
