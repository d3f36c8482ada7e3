"""Joining a Ray cluster started with `ray start`, with token authentication on or off.

`ray start --head` enables Ray's token authentication whenever a token exists (`~/.ray/auth_token`,
which any local `ray.init()` creates, or RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH), while a process
that only connects defaults to RAY_AUTH_MODE=disabled and is refused with a minute of
`InvalidAuthToken` retries. So before connecting to a `host:port` address, `prepare_auth` asks
the cluster's GCS once for its cluster id over gRPC (milliseconds):

1. answered without a token: authentication is off; connect as before (a driver in token mode
   would reject the calls of its own, token-less, workers);
2. UNAUTHENTICATED: look for a token where Ray does (RAY_AUTH_TOKEN, then RAY_AUTH_TOKEN_PATH,
   then ~/.ray/auth_token); if the GCS accepts it, set RAY_AUTH_MODE=token for this process
   (unless the user set RAY_AUTH_MODE) and connect; otherwise stop with one line saying that the
   cluster requires a token and how to provide it, instead of Ray's retries and warnings.
`ray://` (Ray Client) addresses are left alone: their server is not the GCS.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from rstsweep.errors import RstError

MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
HOW_TO = (
    f"set {TOKEN_ENV} to the cluster's token (or {TOKEN_PATH_ENV} to a file holding it; "
    "`ray get-auth-token` on the head node prints it)"
)


def default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


def find_token() -> tuple[str, str] | None:
    """(token, where it came from) from the places Ray reads, in Ray's order; None if none."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token, TOKEN_ENV
    explicit = os.environ.get(TOKEN_PATH_ENV)
    for path, label in ((explicit, f"{TOKEN_PATH_ENV}={explicit}"), (default_token_path(), None)):
        if not path:
            continue
        try:
            text = Path(path).expanduser().read_text().strip()
        except OSError:
            continue
        if text:
            return text, label or str(path)
    return None


def prepare_auth(address: str, timeout: float = 5.0) -> None:
    """For a `host:port` cluster that requires a token: find it, set RAY_AUTH_MODE=token, or
    refuse in one line (see the module docstring). A cluster without authentication is joined
    exactly as before: token mode there would make the driver reject its own workers' calls."""
    if address.startswith("ray://"):
        return  # a Ray Client server is not the GCS: RAY_AUTH_MODE is the user's to set
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return  # `auto` and other forms: Ray resolves them
    target = f"{host}:{port}"
    if _gcs_accepts(target, None, timeout) is not False:
        return  # no authentication (or no answer either way): Ray's own attempt decides
    mode = os.environ.get(MODE_ENV, "").lower()
    found = find_token()
    if mode == "disabled":
        why = f"{MODE_ENV}=disabled is set; unset it and {HOW_TO}"
    elif found is None:
        why = f"no token was found; {HOW_TO}"
    elif _gcs_accepts(target, found[0], timeout) is False:
        why = f"it refused the token from {found[1]}; {HOW_TO}"
    else:
        if not mode:
            os.environ[MODE_ENV] = "token"  # Ray then sends the token it finds where we did
            _refresh_ray_config()
        return
    raise RstError(f"--address {address}: the Ray cluster requires token authentication: {why}")


def _gcs_accepts(target: str, token: str | None, timeout: float) -> bool | None:
    """True/False: the GCS accepted/rejected the credentials; None: no answer either way (not a
    GCS, unreachable, or no gRPC here): Ray's own connection attempt decides."""
    try:
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except Exception:
        return None
    metadata = [("authorization", f"Bearer {token}")] if token else []
    with grpc.insecure_channel(target) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), metadata=metadata, timeout=timeout
            )
        except grpc.RpcError as exc:
            return False if exc.code() == grpc.StatusCode.UNAUTHENTICATED else None
    return True


def _refresh_ray_config() -> None:
    """Ray caches its config (the auth mode among it) at import: re-read it if already imported."""
    raylet = sys.modules.get("ray._raylet")
    if raylet is not None:
        with contextlib.suppress(Exception):  # a private API: worst case Ray reads it itself
            raylet.Config.initialize("")
