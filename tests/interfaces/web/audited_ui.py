"""`python audited_ui.py ARGS` runs `anybody ARGS` with a Python audit hook installed before anything else is
imported: every host name the process looks up, every address it binds and connects to is written, one JSON
line each, to the file named by ANYBODY_AUDIT_LOG (as it happens, so a test can read it while it runs)."""

import json
import os
import sys

LOOKUPS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
           "socket.getnameinfo")
log = open(os.environ["ANYBODY_AUDIT_LOG"], "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives as long as the process)


def record(event: str, args: tuple) -> None:
    if event in LOOKUPS:
        host = args[0][0] if event == "socket.getnameinfo" else args[0]
        log.write(json.dumps({"event": event, "host": host if host is None else str(host)}) + "\n")
    elif event in ("socket.bind", "socket.connect"):
        address = args[1]
        log.write(json.dumps({"event": event, "address": list(address) if isinstance(address, tuple) else str(address)})
                  + "\n")


sys.addaudithook(record)

from anybody.interfaces.cli import main  # noqa: E402 (after the hook, on purpose)

sys.exit(main(sys.argv[1:]))
