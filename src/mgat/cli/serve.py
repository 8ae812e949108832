"""``mgat serve``: the HTTP service of ``mgat.serve`` for a run directory."""

from __future__ import annotations

import argparse

import torch

from mgat.errors import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve recommendations over HTTP",
        description="Serve a trained model over HTTP (FastAPI + uvicorn): "
        "recommendations, scores, explanations, new users and new items. "
        "The API is documented at /docs and /openapi.json.",
    )
    parser.add_argument(
        "--run", required=True, help="a run directory (or a saved model directory)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8000, help="port to bind")
    parser.add_argument("--threads", type=int, help="torch CPU threads per request")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from mgat.serve import MAX_REQUEST_HEAD_BYTES, create_app
    except ImportError as err:
        raise ConfigError(
            f"serving needs the serve extra ({err.name} is missing): "
            "pip install 'mgat[serve]'."
        ) from err
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: expected 0..65535, got {args.port}.")
    if args.threads:
        torch.set_num_threads(args.threads)
    app = create_app(args.run)
    url = f"http://{args.host}:{args.port}"
    print(f"serving {args.run} on {url} (docs at {url}/docs)", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
    )
    return 0
