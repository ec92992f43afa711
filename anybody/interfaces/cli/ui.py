"""`anybody ui`: the local web app, on 127.0.0.1 unless --share-on-network (which needs --auth), fully offline."""

from __future__ import annotations

import argparse
import os
import sys

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
    server.require_free_port(host, args.port)
    require_finite(args.max_upload_mb, "upload limit", "--max-upload-mb", limits.MAX_UPLOAD_MB, positive=True)
    if not server.is_loopback(host):
        print(f"WARNING: listening on {host}: every machine that can reach port {args.port} is asked for the "
              "password; it travels unencrypted (plain HTTP), so share the app on networks you trust only.",
              file=sys.stderr)
    model = args.model or os.environ.get("ANYBODY_MODEL") or UI_DEFAULT_MODEL
    locate_model(model)  # a model that is not here is refused now rather than at the first drawing
    server.serve(model, host=host, port=args.port,
                 library=args.library, out=args.out, max_upload_mb=args.max_upload_mb, device=args.device,
                 dtype=args.dtype, auth=auth)
    return 0
