"""`facemark web`: the verb's options and its runner; the CLI registers them with one call."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the `web` verb to the CLI's subparsers."""
    p = sub.add_parser("web", help="serve the browser page: live landmarks on a webcam or a dropped photo")
    p.add_argument("--port", type=int, default=8088, help="port to listen on (0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0 serves other machines too; a webcam then needs https "
                        "or localhost in the browser)")
    p.add_argument("--no-browser", action="store_true", help="do not open the page in the default browser")
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from facemark.web.server import serve

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be from 0 to 65535, got {args.port}")
    try:
        serve(args.host, args.port, open_browser=not args.no_browser, quiet=args.quiet)
    except KeyboardInterrupt:
        pass
    return 0
