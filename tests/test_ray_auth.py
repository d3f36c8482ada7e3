"""Where rstsweep finds a Ray auth token (Ray's order) and when it turns token mode on; no Ray
processes here (the real `ray start` cluster is in test_ray_cluster.py)."""

from __future__ import annotations

import os

import pytest

from rstsweep.sweeper.auth import _refresh_ray_config, find_token, prepare_auth


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No auth variables and an empty HOME; afterwards the variables (which prepare_auth sets
    directly) and Ray's cached config are restored."""
    keys = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    saved = {k: os.environ.pop(k, None) for k in keys}
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield tmp_path
    for key, value in saved.items():
        os.environ.pop(key, None)
        if value is not None:
            os.environ[key] = value
    _refresh_ray_config()


def test_token_sources_in_rays_order(clean_env):
    assert find_token() is None
    default = clean_env / "home" / ".ray" / "auth_token"
    default.parent.mkdir(parents=True)
    default.write_text("from-home\n")
    assert find_token() == ("from-home", str(default))
    path = clean_env / "tok"
    path.write_text("from-path")
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)
    assert find_token() == ("from-path", f"RAY_AUTH_TOKEN_PATH={path}")
    os.environ["RAY_AUTH_TOKEN"] = "from-env"
    assert find_token() == ("from-env", "RAY_AUTH_TOKEN")


def test_ray_client_addresses_are_left_alone(clean_env):
    os.environ["RAY_AUTH_TOKEN"] = "abc"
    prepare_auth("ray://127.0.0.1:1")  # a Ray Client address: no GCS to ask
    assert "RAY_AUTH_MODE" not in os.environ


def test_an_address_that_is_no_gcs_is_left_to_ray(clean_env):
    import socket

    with socket.socket() as server:  # listens but speaks no gRPC
        server.bind(("127.0.0.1", 0))
        server.listen()
        os.environ["RAY_AUTH_TOKEN"] = "abc"
        prepare_auth(f"127.0.0.1:{server.getsockname()[1]}", timeout=1.0)
    assert "RAY_AUTH_MODE" not in os.environ
