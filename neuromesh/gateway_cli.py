"""The gateway's part of the ``neuromesh`` command line: artifacts, pipelines and jobs.

Every command talks to one gateway as one tenant. Which gateway: ``--gateway URL`` (or
``NEUROMESH_GATEWAY_URL``) with a token from ``--token-file`` (or ``NEUROMESH_TOKEN``, or
``NEUROMESH_TOKEN_FILE``); without them, the local stack of ``neuromesh up`` (its recorded
address and its dev token). ``--json`` prints the gateway's JSON documents for scripts instead of
text for people; messages about progress go to stderr either way, so stdout stays parseable.

Exit codes (:data:`EXIT_CODES`): 0 done; 1 the job failed or was cancelled (the failing step's
service message is printed); 2 bad usage, or a request the gateway refused as invalid; 3 a job,
artifact or pipeline that does not exist; 4 no gateway answered, or it refused the token; 5 the
gateway failed (5xx); 130 interrupted by Ctrl-C (a job being watched by ``run`` is cancelled).

Example
-------
    neuromesh upload em.npy em/raw                       # a .npy becomes a Zarr array at em/raw
    neuromesh run em-to-connectome --input raw=em/raw --param thresholds='[0.3,0.5]' --param threshold=0.5
    neuromesh jobs list --state running --json
    neuromesh download --job 5c0e... segment/figure -o segment.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from neuromesh.sdk.gateway import (TERMINAL_STATES, GatewayClient, GatewayError, GatewayUnreachable, Job,
                                   KeyTaken, publish)

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_SERVER, EXIT_INTERRUPTED = (
    0, 1, 2, 3, 4, 5, 130)
EXIT_CODES = {EXIT_OK: "done", EXIT_JOB_FAILED: "the job failed or was cancelled",
              EXIT_USAGE: "bad usage, or a request the gateway refused as invalid",
              EXIT_NOT_FOUND: "a job, artifact or pipeline that does not exist",
              EXIT_UNREACHABLE: "no gateway answered, or it refused the token",
              EXIT_SERVER: "the gateway failed (HTTP 5xx)", EXIT_INTERRUPTED: "interrupted (Ctrl-C)"}


class UsageError(Exception):
    """A command line that cannot be carried out as written (exit 2, with the usage line)."""

    show_usage = True


class Refused(UsageError):
    """A request that is well formed but cannot be done as asked, e.g. a key that is taken (exit 2)."""

    show_usage = False


def exit_code_of(error: GatewayError) -> int:
    """The exit code of an error answer of the gateway.

    Examples
    --------
    >>> exit_code_of(GatewayError(422, {"reason": "INVALID_ARGUMENT"})), exit_code_of(GatewayError(404, {}))
    (2, 3)
    >>> exit_code_of(GatewayError(401, {})), exit_code_of(GatewayError(503, {}))
    (4, 5)
    """
    if error.status in (401, 403):
        return EXIT_UNREACHABLE
    if error.status == 404:
        return EXIT_NOT_FOUND
    if error.status >= 500:
        return EXIT_SERVER
    return EXIT_USAGE


# ------------------------------------------------------------------ arguments


def parse_assignment(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"{what} {text!r} is not NAME=VALUE")
    return name.strip(), value


def parse_params(assignments: list[str], params_file: str | None) -> dict[str, Any]:
    """``--param`` values over a ``--params-file``: each VALUE is JSON if it parses as JSON, else a string;
    a dotted NAME sets a nested field.

    Examples
    --------
    >>> parse_params(["thresholds=[0.3, 0.5]", "label=run 1", "analysis.n_random=5", "analyze=true"], None)
    {'thresholds': [0.3, 0.5], 'label': 'run 1', 'analysis': {'n_random': 5}, 'analyze': True}
    >>> parse_params(["oops"], None)
    Traceback (most recent call last):
    ...
    neuromesh.gateway_cli.UsageError: --param 'oops' is not NAME=VALUE
    """
    params: dict[str, Any] = {}
    if params_file:
        try:
            params = json.loads(Path(params_file).read_text())
        except OSError as exc:
            raise UsageError(f"--params-file {params_file}: {exc.strerror}") from None
        except ValueError as exc:
            raise UsageError(f"--params-file {params_file} is not JSON: {exc}") from None
        if not isinstance(params, dict):
            raise UsageError(f"--params-file {params_file} must hold a JSON object")
    for text in assignments:
        name, raw = parse_assignment(text, "--param")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        *parents, leaf = name.split(".")
        here = params
        for part in parents:
            here = here.setdefault(part, {})
            if not isinstance(here, dict):
                raise UsageError(f"--param {name}: {part} is set to a value, not an object")
        here[leaf] = value
    return params


# ------------------------------------------------------------------ connection and output


def connect(args) -> GatewayClient:
    """The gateway of ``--gateway``/``NEUROMESH_GATEWAY_URL`` with its token, else the local stack's."""
    url = args.gateway or os.environ.get("NEUROMESH_GATEWAY_URL")
    if not url:
        return GatewayClient.local(args.state_dir)
    token_file = args.token_file or os.environ.get("NEUROMESH_TOKEN_FILE")
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"token file {token_file}: {exc.strerror}") from None
    else:
        token = os.environ.get("NEUROMESH_TOKEN", "").strip()
    if not token:
        raise UsageError(f"no token for {url}: give --token-file, or set NEUROMESH_TOKEN")
    ca_file = args.ca_file or os.environ.get("NEUROMESH_GATEWAY_CA_FILE")
    if ca_file and not Path(ca_file).is_file():
        raise UsageError(f"no CA file {ca_file}")
    return GatewayClient(url, token, ca_file=ca_file or None)


def say(*parts: Any) -> None:
    """A message for people: stderr, so stdout stays what a script parses."""
    print(*parts, file=sys.stderr, flush=True)


def emit(args, document: Any, text: Callable[[], str]) -> None:
    print(json.dumps(document, indent=2, default=str) if args.json else text())


def _percent(value: float | None) -> str:
    return f"{100 * value:5.1f}%" if value is not None else "    - "


def job_text(job: Mapping[str, Any]) -> str:
    """A job for people: its state, then a line per step with its outputs.

    Examples
    --------
    >>> print(job_text({"id": "j1", "state": "failed", "progress": 0.5, "steps": [
    ...     {"id": "fit", "service": "reduction", "method": "FitPCA", "state": "failed", "progress": 0.0,
    ...      "reused": False, "error": {"code": "INVALID_ARGUMENT", "message": "activity has NaN"}, "outputs": {}}]}))
    job j1  failed  50.0%
      fit           reduction.FitPCA                 failed       0.0%  INVALID_ARGUMENT: activity has NaN
    """
    lines = [f"job {job['id']}  {job['state']}  {_percent(job.get('progress')).strip()}"]
    for step in job.get("steps", []):
        error = step.get("error")
        note = f"{error['code']}: {error['message']}" if error else ("(reused)" if step.get("reused") else "")
        lines.append(f"  {step['id']:<13} {step['service'] + '.' + step['method']:<32} {step['state']:<10} "
                     f"{_percent(step.get('progress'))}  {note}".rstrip())
        for name, out in sorted(step.get("outputs", {}).items()):
            lines.append(f"      {step['id']}/{name}  {out.get('uri', '')}")
    return "\n".join(lines)


def finished(args, job: Mapping[str, Any]) -> int:
    """Print an ended job and map its state to the exit code."""
    emit(args, job, lambda: job_text(job))
    if job["state"] == "succeeded":
        return EXIT_OK
    say(f"neuromesh: job {job['id']} {job['state']}: {Job.from_json(job).failure}")
    return EXIT_JOB_FAILED


def watch_or_cancel(args, gw: GatewayClient, job: Mapping[str, Any], *, cancel_on_interrupt: bool) -> int:
    """Follow ``job`` to its end (a progress bar on a terminal, else a line on stderr per step change);
    on Ctrl-C cancel it (``run``, ``jobs submit``) or just stop following (``jobs watch``)."""
    seen: dict[str, tuple] = {}

    def line(step: Mapping[str, Any]) -> None:
        now = (step["state"], round(step.get("progress") or 0.0, 2))
        if not args.quiet and seen.get(step["id"]) != now:
            seen[step["id"]] = now
            say(f"{step['id']:<13} {step['state']:<10} {_percent(step.get('progress'))}  "
                f"{step.get('progress_message') or ''}".rstrip())

    bar = not args.quiet and sys.stderr.isatty()   # a terminal gets a progress bar, a log gets lines
    try:
        ended = gw.follow(job["id"], show=bar, on_step=None if bar else line,
                          cancel_on_interrupt=cancel_on_interrupt, timeout_s=args.timeout)
    except KeyboardInterrupt:
        if cancel_on_interrupt:
            say(f"neuromesh: interrupted; job {job['id']} cancelled ({gw.job(job['id'])['state']})")
        else:
            say(f"neuromesh: interrupted; job {job['id']} goes on")
        return EXIT_INTERRUPTED
    return finished(args, ended.document)


# ------------------------------------------------------------------ artifacts


def cmd_upload(args) -> int:
    path = Path(args.path)
    if not path.is_file():
        raise UsageError(f"no file {path}")
    gw = connect(args)
    try:
        artifact = gw.upload_once(args.key or path.name, path, kind=args.kind, on_reuse=_reused(path))
    except KeyTaken as exc:
        raise Refused(str(exc)) from None
    emit(args, artifact, lambda: f"{artifact['key']}  sha256 {artifact['sha256']}  {artifact['size_bytes']} bytes"
                                 + (f"  {artifact.get('dtype')} {artifact.get('shape')}" if artifact.get("shape")
                                    else ""))
    return EXIT_OK


def _save_array(artifact: Mapping[str, Any], dest: Path, args) -> None:
    """An array has no download URL: read it from the object store (the local stack's or
    ``NEUROMESH_S3_*``'s credentials) slab by slab into a ``.npy`` file."""
    import numpy as np

    from neuromesh.sdk.artifacts import Artifacts
    from neuromesh.sdk.client import Client

    bucket, _, key = artifact["uri"].removeprefix("s3://").partition("/")
    try:
        client = Client.from_env() if os.environ.get("NEUROMESH_S3_ENDPOINT") else Client.local(args.state_dir)
    except Exception as exc:  # no credentials of the store here: say how to get the array instead
        raise UsageError(f"{artifact['key']} is an array; reading it needs the object store's credentials "
                         f"(NEUROMESH_S3_ENDPOINT and keys, or a local stack): {exc}") from None
    store = Artifacts.connect(client.s3_endpoint, client._s3["access_key"], client._s3["secret_key"], bucket,
                              secure=client._s3["secure"], region=client._s3["region"])
    array = store.open_array(key)
    fd, partial = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part.npy", dir=dest.parent)
    os.close(fd)
    try:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=array.dtype, shape=array.shape)
        rows = max(1, (64 << 20) // max(1, out[:1].nbytes)) if array.ndim else 1
        if array.ndim == 0:
            out[()] = array[()]
        for start in range(0, array.shape[0] if array.ndim else 0, rows):
            out[start:start + rows] = array[start:start + rows]
        out.flush()
        del out
        publish(partial, dest)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def cmd_download(args) -> int:
    if args.job:
        if "/" not in args.name.strip("/"):
            raise UsageError(f"with --job, name a step's output as STEP/OUTPUT (e.g. segment/figure), not "
                             f"{args.name!r}")
    gw = connect(args)
    if args.job:
        try:
            artifact = Job.from_json(gw.job(args.job)).output(args.name).as_json()
        except KeyError as exc:
            raise UsageError(exc.args[0]) from None
    else:
        artifact = gw.artifact(args.name)
    name = artifact["key"].rstrip("/").rsplit("/", 1)[-1]
    is_array = not artifact.get("download_url")
    dest = Path(args.output or (name + (".npy" if is_array and not name.endswith(".npy") else "")))
    if dest.is_dir():
        dest = dest / (name + (".npy" if is_array else ""))
    if is_array:
        _save_array(artifact, dest, args)
    else:
        gw.download_to(artifact, dest)
    emit(args, {**artifact, "path": str(dest)}, lambda: f"{dest}  ({artifact['uri']}, sha256 "
                                                          f"{artifact['sha256'][:12]}...)")
    return EXIT_OK


# ------------------------------------------------------------------ pipelines and jobs


def _reused(path: Path) -> Callable[[str], None]:
    return lambda key: say(f"{path}: stored already as {key}, not uploaded again")


def resolve_inputs(gw: GatewayClient, pipeline: Mapping[str, Any], assignments: list[str]) -> dict[str, str]:
    """``--input NAME=VALUE``: a local file is uploaded (once: under its content's sha256) and its key
    used; anything else is taken as the key of an artifact you stored."""
    declared = {i["name"]: i for i in pipeline.get("inputs", [])}
    inputs: dict[str, str] = {}
    for text in assignments:
        name, value = parse_assignment(text, "--input")
        if name not in declared:
            raise UsageError(f"pipeline {pipeline['name']} has no input {name!r}; its inputs: "
                             f"{', '.join(declared) or 'none'}")
        try:
            inputs[name] = gw.stage_input(value, kind=declared[name].get("kind"), on_reuse=_reused(Path(value)))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if inputs[name] != value:
            say(f"input {name}: {value} -> {inputs[name]}")
    missing = [n for n, i in declared.items() if i.get("required") and n not in inputs]
    if missing:
        raise UsageError(f"pipeline {pipeline['name']} needs --input for {', '.join(missing)}")
    return inputs


def follow_submitted(args, gw: GatewayClient, job: Mapping[str, Any]) -> int:
    """A job just submitted: print its id and return (``--detach``), or follow it to its end."""
    say(f"job {job['id']} {job['state']}")
    if args.detach:
        emit(args, job, lambda: job["id"])
        return EXIT_OK
    return watch_or_cancel(args, gw, job, cancel_on_interrupt=True)


def cmd_run(args) -> int:
    params = parse_params(args.param, args.params_file)
    gw = connect(args)
    pipeline = gw.pipeline(args.pipeline)
    inputs = resolve_inputs(gw, pipeline, args.input)
    job = gw.run_pipeline(args.pipeline, inputs=inputs, params=params, idempotency_key=args.idempotency_key)
    return follow_submitted(args, gw, job)


def cmd_submit(args) -> int:
    try:
        spec = json.loads(Path(args.file).read_text()) if args.file != "-" else json.load(sys.stdin)
    except OSError as exc:
        raise UsageError(f"{args.file}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{args.file} is not JSON: {exc}") from None
    gw = connect(args)
    job = gw.submit(spec, idempotency_key=args.idempotency_key)
    return follow_submitted(args, gw, job)


def cmd_pipelines(args) -> int:
    gw = connect(args)
    if args.name:
        info = gw.pipeline(args.name)
        props = info["params_schema"].get("properties", {})

        def text() -> str:
            lines = [f"{info['name']}: {info['description'].strip().splitlines()[0]}", "inputs:"]
            lines += [f"  {i['name']:<16} {i['kind']:<7} {'required' if i['required'] else 'optional':<9} "
                      f"{i['description']}" for i in info["inputs"]]
            lines.append("params:")
            lines += [f"  {n:<22} {p.get('description', '')}" + (f" (default {json.dumps(p['default'])})"
                                                                  if "default" in p else "")
                      for n, p in props.items()]
            return "\n".join(lines)

        emit(args, info, text)
    else:
        found = gw.pipelines()
        emit(args, found, lambda: "\n".join(f"{p['name']:<22} {p['description'].strip().splitlines()[0]}"
                                            for p in found))
    return EXIT_OK


def cmd_jobs_list(args) -> int:
    page = connect(args).jobs(states=args.state or (), limit=args.limit)
    jobs = page["jobs"]
    emit(args, page, lambda: "\n".join(
        [f"{'id':<36}  {'state':<10} {'progress':>8}  {'created (UTC)':<19}  services"]
        + [f"{j['id']:<36}  {j['state']:<10} {_percent(j.get('progress')):>8}  {str(j['created_at'])[:19]:<19}  "
           f"{','.join(j.get('services', []))}" for j in jobs]) if jobs else "no jobs")
    return EXIT_OK


def cmd_jobs_show(args) -> int:
    job = connect(args).job(args.job_id)
    emit(args, job, lambda: job_text(job))
    return EXIT_OK


def cmd_jobs_watch(args) -> int:
    gw = connect(args)
    return watch_or_cancel(args, gw, gw.job(args.job_id), cancel_on_interrupt=False)


def cmd_jobs_cancel(args) -> int:
    gw = connect(args)
    job = gw.cancel(args.job_id)
    if args.wait and job["state"] not in TERMINAL_STATES:
        job = gw.wait(args.job_id, timeout_s=args.timeout)
    emit(args, job, lambda: f"job {job['id']} {job['state']}")
    return EXIT_OK


# ------------------------------------------------------------------ the parser


def add_gateway_commands(sub, common: argparse.ArgumentParser) -> None:
    """The gateway's subcommands on the ``neuromesh`` parser; ``common`` holds ``--json``."""
    connection = argparse.ArgumentParser(add_help=False, parents=[common])
    group = connection.add_argument_group("gateway")
    group.add_argument("--gateway", metavar="URL", help="the gateway (default: env NEUROMESH_GATEWAY_URL, else the "
                                                        "local stack's)")
    group.add_argument("--token-file", metavar="PATH", help="file holding your token (default: env NEUROMESH_TOKEN "
                                                            "or NEUROMESH_TOKEN_FILE; the local stack's dev token)")
    group.add_argument("--ca-file", metavar="PEM", help="certificate authorities to trust for an https gateway "
                                                        "(default: env NEUROMESH_GATEWAY_CA_FILE, else the system's)")
    following = argparse.ArgumentParser(add_help=False)
    following.add_argument("--timeout", type=float, default=24 * 3600.0, metavar="S",
                           help="stop following after S seconds (the job goes on; default: a day)")
    following.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    submitting = argparse.ArgumentParser(add_help=False, parents=[following])
    submitting.add_argument("--idempotency-key", metavar="KEY", help="a resubmission with this key returns the "
                                                                     "same job instead of starting another")
    submitting.add_argument("--detach", action="store_true", help="print the job id and return; do not follow it")

    up = sub.add_parser("upload", parents=[connection], help="upload a file as an artifact (.npy and TIFF as arrays)")
    up.add_argument("path", help="the file")
    up.add_argument("key", nargs="?", help="its key in your namespace (default: the file name)")
    up.add_argument("--kind", choices=["array", "object"], help="default: array for .npy and TIFF, else object")
    up.set_defaults(func=cmd_upload)

    down = sub.add_parser("download", parents=[connection],
                          help="download an artifact, or with --job a job's output (arrays as .npy)")
    down.add_argument("name", help="an artifact key; with --job, STEP/OUTPUT (e.g. segment/figure)")
    down.add_argument("--job", metavar="JOB_ID", help="download an output of this job")
    down.add_argument("-o", "--output", metavar="PATH", help="where to write (a file or a folder; default: the "
                                                             "key's last part here)")
    down.set_defaults(func=cmd_download)

    run = sub.add_parser("run", parents=[connection, submitting],
                         help="run a named pipeline and follow it to its end (Ctrl-C cancels it)")
    run.add_argument("pipeline", help="e.g. em-to-connectome (`neuromesh pipelines` lists them)")
    run.add_argument("--input", action="append", default=[], metavar="NAME=PATH_OR_KEY",
                     help="an input: a local file (uploaded) or the key of a stored artifact; repeatable")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="a parameter; VALUE is JSON if it parses, else text; NAME may be dotted; repeatable")
    run.add_argument("--params-file", metavar="JSON", help="parameters from a JSON object (--param wins)")
    run.set_defaults(func=cmd_run)

    pipelines = sub.add_parser("pipelines", parents=[connection], help="the named pipelines, or one's inputs and "
                                                                       "params")
    pipelines.add_argument("name", nargs="?")
    pipelines.set_defaults(func=cmd_pipelines)

    jobs = sub.add_parser("jobs", help="your jobs: list, show, watch, cancel, submit")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    listing = jobs_sub.add_parser("list", parents=[connection], help="your jobs, newest first")
    listing.add_argument("--state", action="append", choices=["pending", "running", "cancelling", "succeeded",
                                                              "failed", "cancelled"], help="only these; repeatable")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (1 to 500)")
    listing.set_defaults(func=cmd_jobs_list)
    show = jobs_sub.add_parser("show", parents=[connection], help="a job: its steps, their state and outputs")
    show.add_argument("job_id")
    show.set_defaults(func=cmd_jobs_show)
    watch = jobs_sub.add_parser("watch", parents=[connection, following],
                                help="follow a job to its end; exit 0 if it succeeded, 1 if not")
    watch.add_argument("job_id")
    watch.set_defaults(func=cmd_jobs_watch)
    cancel = jobs_sub.add_parser("cancel", parents=[connection], help="cancel a job (its running calls stop)")
    cancel.add_argument("job_id")
    cancel.add_argument("--wait", action="store_true", help="wait until its running steps have stopped")
    cancel.add_argument("--timeout", type=float, default=120.0, metavar="S", help="with --wait: at most S seconds")
    cancel.set_defaults(func=cmd_jobs_cancel)
    submit = jobs_sub.add_parser("submit", parents=[connection, submitting],
                                 help="submit a job DAG from a JSON file (- for stdin) and follow it")
    submit.add_argument("file")
    submit.set_defaults(func=cmd_submit)
    for command in (up, down, run, pipelines, listing, show, watch, cancel, submit):
        command.set_defaults(usage=command.format_usage)   # a usage error shows its own command's line


def run_gateway_command(args, parser: argparse.ArgumentParser) -> int:
    """Run a gateway subcommand, mapping every failure to its exit code and a one-line message."""
    name = " ".join(filter(None, [args.command, getattr(args, "jobs_command", None)]))
    try:
        return args.func(args)
    except UsageError as exc:
        if exc.show_usage:
            sys.stderr.write(getattr(args, "usage", parser.format_usage)())
        say(f"neuromesh {name}: error: {exc}")
        return EXIT_USAGE
    except GatewayError as exc:
        field = f" (field {exc.field})" if exc.field else ""
        say(f"neuromesh {name}: {exc.reason or 'HTTP ' + str(exc.status)}: {exc.message}{field}")
        return exit_code_of(exc)
    except GatewayUnreachable as exc:
        say(f"neuromesh {name}: no gateway: {exc}")
        return EXIT_UNREACHABLE
    except TimeoutError as exc:
        say(f"neuromesh {name}: {exc}")
        return EXIT_JOB_FAILED
    except KeyboardInterrupt:
        say(f"neuromesh {name}: interrupted")
        return EXIT_INTERRUPTED
    except ValueError as exc:  # a download whose digest does not match, an unreadable array
        say(f"neuromesh {name}: {exc}")
        return EXIT_SERVER
