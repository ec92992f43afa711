"""`anybody ui`: the local web app, on 127.0.0.1 unless --share-on-network (which needs --auth), fully offline."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from anybody.interfaces.cli.options import add_device, add_library
from anybody.interfaces.web import limits

UI_DEFAULT_MODEL = "tiny"  # works on any machine with nothing downloaded; the page says its weights are random


def add_parsers(commands: argparse._SubParsersAction) -> None:
    from anybody.interfaces.web import server

    ui = commands.add_parser("ui", help="the local web app: learn, draw and manage identities in a browser",
                             description="Start the web app and print its address. Nothing it does reaches the "
                             "internet; the model must already be on this machine.")
    ui.add_argument("--model", help="the model to learn and draw with: a Hub id already downloaded, a diffusers "
                    f"folder, a .safetensors/.ckpt file, or a built-in tiny model (default: ANYBODY_MODEL, else "
                    f"{UI_DEFAULT_MODEL}, random weights)")
    add_device(ui)
    ui.add_argument("--host", help=f"the address to listen on (default {server.LOOPBACK}; another needs "
                    "--share-on-network and --auth)")
    ui.add_argument("--port", type=int, default=server.PORT, help=f"(default {server.PORT})")
    ui.add_argument("--share-on-network", action="store_true",
                    help=f"listen on every interface ({server.ALL_INTERFACES}), so that other machines of the "
                    "network can use the app; needs --auth")
    ui.add_argument("--auth", metavar="USER:PASSWORD",
                    help="ask for this user name and password on the page and on every API call (default: "
                    f"{server.AUTH_ENVIRONMENT}, else none, which only the loopback address allows)")
    ui.add_argument("--max-upload-mb", type=float, default=limits.MAX_UPLOAD_MB,
                    help=f"the largest file a page may upload, in MB (default {limits.MAX_UPLOAD_MB})")
    ui.add_argument("--out", default=server.OUT, help=f"folder for the drawings (default {server.OUT})")
    ui.add_argument("--controlnet", action="append", default=[], metavar="ID_OR_PATH",
                    help="a ControlNet the Draw tab offers (repeat for more): a Hub id in the Hugging Face cache, a "
                    "diffusers folder or a single .safetensors file. The cached ControlNets that fit the model are "
                    "offered anyway, and tiny (random weights) with a built-in model; a page can choose only these")
    add_library(ui)
    ui.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from anybody.errors import require_finite
    from anybody.interfaces.web import server
    from anybody.models.catalog import locate_model

    server.require_gradio()
    host = server.choose_host(args.host, args.share_on_network)
    auth = server.parse_auth(args.auth if args.auth is not None else os.environ.get(server.AUTH_ENVIRONMENT) or None)
    server.require_auth(host, auth)
    model = args.model or os.environ.get("ANYBODY_MODEL") or UI_DEFAULT_MODEL
    for controlnet in args.controlnet:
        locate_controlnet(controlnet, model)
    server.require_free_port(host, args.port)
    require_finite(args.max_upload_mb, "upload limit", "--max-upload-mb", limits.MAX_UPLOAD_MB, positive=True)
    if not server.is_loopback(host):
        print(f"WARNING: listening on {host}: every machine that can reach port {args.port} is asked for the "
              "password; it travels unencrypted (plain HTTP), so share the app on networks you trust only.",
              file=sys.stderr)
    locate_model(model)  # a model that is not here is refused now rather than at the first drawing
    server.serve(model, host=host, port=args.port,
                 library=args.library, out=args.out, max_upload_mb=args.max_upload_mb, device=args.device,
                 dtype=args.dtype, auth=auth, controlnets=args.controlnet)
    return 0


def locate_controlnet(name: str, model: str) -> None:
    """A ControlNet the app can load offline: a folder or file here, or a Hub id in the Hugging Face cache
    (the app never downloads); tiny only beside a built-in model (its weights are random)."""
    from anybody.errors import ModelError
    from anybody.generation.inputs import check_controlnet_path
    from anybody.interfaces.cli.options import BUILT_IN_MODELS
    from anybody.models.catalog import cached_snapshot, is_repo_id

    if name == "tiny":
        if model not in BUILT_IN_MODELS:
            raise ModelError("The tiny ControlNet has random weights: it steers only the built-in tiny models",
                             "Pass a ControlNet made for your model (a Hub id, folder or .safetensors file)")
        return
    check_controlnet_path(name)  # a path that is not there
    if Path(name).expanduser().exists():
        return
    if not is_repo_id(name):
        raise ModelError(f"The ControlNet {name!r} is neither a file or folder here nor a Hub id (owner/name)",
                         "Pass a ControlNet's Hub id, diffusers folder or .safetensors file")
    if cached_snapshot(name) is None:
        raise ModelError(f"The ControlNet {name} is not on this machine, and the app does not download: it reads "
                         "Hub models from the Hugging Face cache only",
                         f"Download it where you are online with: hf download {name}, then start the app again")
