"""The ``neuromesh`` command line: the local stack, and the gateway's artifacts, pipelines and jobs.

The stack: ``up``, ``status``, ``down`` (here). The gateway: ``upload``, ``download``, ``run``,
``pipelines``, ``jobs list|show|watch|cancel|submit`` (:mod:`neuromesh.gateway_cli`). Every
command takes ``--json`` for scripts.

Exit codes: 0 success; 1 the operation failed (the stack could not start, a job failed or was
cancelled: the message says why); 2 bad usage (a usage message) or a request the gateway refused
as invalid; 3 a job, artifact or pipeline that does not exist; 4 no gateway answered, or it
refused the token; 5 the gateway failed; 130 interrupted by Ctrl-C.

Example
-------
    neuromesh up          # start the object store, every service and the gateway, wait until healthy
    neuromesh status      # health of each component (--json for scripts)
    neuromesh run em-to-connectome --input raw=em.npy --param thresholds='[0.5]'
    neuromesh jobs list
    neuromesh down        # stop them; data stays in .neuromesh/s3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _stack(args):
    from services.common.settings import load_settings

    from .stack.local import LocalStack

    return LocalStack(Path(args.state_dir), load_settings(), port_offset=getattr(args, "port_offset", 0))


def cmd_up(args) -> int:
    stack = _stack(args)
    state = stack.up(timeout_s=args.timeout)
    print(f"stack is up; state in {stack.state_path}, logs in {stack.state_dir / 'logs'}")
    if args.json:
        print(state.to_json())
    return 0


def cmd_down(args) -> int:
    _stack(args).down()
    return 0


def cmd_status(args) -> int:
    rows = _stack(args).status()
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no stack is running here (neuromesh up starts one)")
    else:
        for r in rows:
            metrics = f"http://{r['metrics']}/metrics" if r["metrics"] else ""
            print(f"{r['name']:<14} {r['health']:<12} {r['endpoint']:<22} pid {r['pid']:<8} {metrics}")
    healthy = bool(rows) and all(r["health"] == "SERVING" for r in rows)
    return 0 if healthy else 1


def build_parser() -> argparse.ArgumentParser:
    from .stack.local import default_state_dir

    from .gateway_cli import EXIT_CODES, add_gateway_commands

    epilog = "exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(prog="neuromesh", description="NeuroMesh: neural data analysis services",
                                     epilog=epilog)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--state-dir", default=str(default_state_dir()),
                        help="where the local stack keeps its state, logs and data (default: %(default)s; "
                             "env NEUROMESH_STATE_DIR)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", parents=[common], help="start the local stack (object store, services, gateway) and wait until every "
                                   "part is healthy")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each part")
    up.add_argument("--port-offset", type=int, default=0,
                    help="add this to every default port, to run a second stack beside another")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the local stack (data is kept)")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", parents=[common],
                            help="health of each part of the local stack; exit 1 unless all serve")
    status.set_defaults(func=cmd_status)
    add_gateway_commands(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    from services.common.settings import SettingsError

    from .stack.local import StackError, StartError

    from .gateway_cli import run_gateway_command

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("up", "down", "status"):
        try:
            return run_gateway_command(args, parser)
        except BrokenPipeError:  # `neuromesh jobs list | head`: the reader left; not an error of ours
            sys.stderr.close()
            return 0
    try:
        return args.func(args)
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    except (StackError, StartError, OSError) as err:
        print(f"neuromesh {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
