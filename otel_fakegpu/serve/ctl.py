"""``otel-fakegpu ctl``: drive a running exporter's control API by hand or from a script.

Over the exporter's Unix socket (``--socket``, default the exporter's default path) or TCP (``--url``, the token
from OTEL_FAKEGPU_CONTROL_TOKEN). Human output by default, ``--json`` for scripts. Exit codes: 0 done, 1 the
server refused (its one-line error), 2 bad arguments or no server there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from otel_fakegpu.serve.ctl_http import Endpoint, NoServerError, ServerError
from otel_fakegpu.serve.uds import DEFAULT_SOCKET_PATH

PROG = "otel-fakegpu ctl"
TOKEN_VARIABLE = "OTEL_FAKEGPU_CONTROL_TOKEN"
V1 = "/control/v1"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints the usage too)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _selectors(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", action="append", help="a host name (repeatable); default every host")
    parser.add_argument("--rack", help="every host of this rack (r0, r1, ...)")
    parser.add_argument("--label", action="append", help="hosts whose /sd label NAME has VALUE: NAME=VALUE")
    parser.add_argument("--fraction", type=float, help="this share of the selected hosts (0-1], drawn by --seed")
    parser.add_argument("--seed", type=int, default=0, help="seed of --fraction (same seed, same hosts)")
    parser.add_argument("--gpu", action="append", help="a GPU index (repeatable) or 'all' (default all)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Drive a running otel-fakegpu's control API (drills, faults, workloads).")
    parser.add_argument(
        "--socket", default=DEFAULT_SOCKET_PATH, help=f"the exporter's Unix socket ({DEFAULT_SOCKET_PATH})"
    )
    parser.add_argument("--url", help=f"the exporter's TCP base URL instead (token from {TOKEN_VARIABLE})")
    parser.add_argument("--json", action="store_true", help="print the server's JSON answer")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("hosts", help="the hosts this exporter serves")
    state = sub.add_parser("state", help="scenario time, every GPU's faults, the host's drills")
    state.add_argument("--host")
    xid = sub.add_parser("xid", help="an XID on the selected GPUs")
    xid.add_argument("code", type=int)
    unreachable = sub.add_parser("unreachable", help="what scrapers of the selected hosts meet")
    unreachable.add_argument("mode", help="refused, timeout, http_500, slow, empty_page, stale, truncated or ok")
    unreachable.add_argument("--delay", help="with slow: how long each scrape waits, e.g. 12s")
    power = sub.add_parser("power", help="power the selected hosts off or on (a power cycle)")
    power.add_argument("state", choices=("off", "on"))
    for name, states, what in (("fabric", ("fail", "ok"), "NVLink fabric"), ("cooling", ("fail", "ok"), "cooling")):
        sub.add_parser(name, help=f"the {what} of the selected hosts").add_argument("state", choices=states)
    event = sub.add_parser("event", help="any event (scenario vocabulary, JSON) on the selected hosts and GPUs")
    event.add_argument("event", help='e.g. \'{"fault": "fall_off_bus"}\'')
    for command in (xid, unreachable, power, event, *(sub.choices[n] for n in ("fabric", "cooling"))):
        _selectors(command)
    events = sub.add_parser("events", help="the history of applied events")
    events.add_argument("--host")
    events.add_argument("--gpu", type=int)
    events.add_argument("--kind")
    undo = sub.add_parser("undo", help="undo an event by its id (lasting ones only)")
    undo.add_argument("id")
    workload = sub.add_parser("workload", help="start or stop a simulated workload")
    actions = workload.add_subparsers(dest="action", required=True, parser_class=_Parser)
    add = actions.add_parser("add", help="place a workload (scenario keys)")
    add.add_argument("--pod", required=True)
    add.add_argument("--gpus", required=True, help="GPU indices, comma list")
    add.add_argument("--namespace", default="default")
    add.add_argument("--container")
    add.add_argument("--shape", default="constant")
    add.add_argument("--stop", help="stop after this long, e.g. 10m")
    add.add_argument("--host")
    remove = actions.add_parser("rm", help="remove the workload NAMESPACE/POD/CONTAINER")
    remove.add_argument("key")
    remove.add_argument("--host")
    return parser


def _host_selector(args: argparse.Namespace) -> object:
    selector: dict[str, Any] = {}
    if args.host:
        selector["hosts"] = args.host
    if args.rack:
        selector["rack"] = args.rack
    if args.label:
        pairs = [label.partition("=") for label in args.label]
        bad = [label for label, (_, eq, _) in zip(args.label, pairs, strict=True) if not eq]
        if bad:
            raise ValueError(f"--label: expected NAME=VALUE, got {bad[0]!r}")
        selector["labels"] = {name: value for name, _, value in pairs}
    if args.fraction is not None:
        selector.update(fraction=args.fraction, seed=args.seed)
    return selector or "all"


def _gpu_selector(gpus: Sequence[str] | None) -> object:
    if not gpus or "all" in gpus:
        return "all"
    if not all(g.isdigit() for g in gpus):
        raise ValueError(f"--gpu: expected GPU indices or 'all', got {', '.join(gpus)}")
    return [int(g) for g in gpus]


def _event_body(args: argparse.Namespace) -> dict[str, Any]:
    command = args.command
    if command == "xid":
        return {"xid": args.code}
    if command == "unreachable":
        return {"reachability": args.mode, **({"delay": args.delay} if args.delay else {})}
    if command in ("power", "fabric", "cooling"):
        return {command: args.state}
    try:
        body = json.loads(args.event)
    except ValueError as exc:
        raise ValueError(f"event: not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError(f"event: expected a JSON object, got {args.event!r}")
    return body


def _under(host: str | None) -> str:
    return f"{V1}/hosts/{host}" if host else V1


def request_for(args: argparse.Namespace) -> tuple[str, str, object]:
    """The method, path and body of the request a command sends; ValueError for a bad argument."""
    command = args.command
    if command == "hosts":
        return "GET", f"{V1}/hosts", None
    if command == "state":
        return "GET", f"{_under(args.host)}/state", None
    if command == "events":
        query = [f"{k}={v}" for k, v in (("host", args.host), ("gpu", args.gpu), ("kind", args.kind)) if v is not None]
        return "GET", f"{V1}/events" + ("?" + "&".join(query) if query else ""), None
    if command == "undo":
        return "DELETE", f"{V1}/events/{args.id}", None
    if command == "workload":
        if args.action == "rm":
            return "DELETE", f"{_under(args.host)}/workloads/{args.key}", None
        indices = [g.strip() for g in args.gpus.split(",")]
        if not all(g.isdigit() for g in indices):
            raise ValueError(f"--gpus: expected GPU indices, comma list, got {args.gpus!r}")
        body = {"pod": args.pod, "namespace": args.namespace, "gpus": [int(g) for g in indices], "shape": args.shape}
        body |= {k: v for k, v in (("container", args.container), ("stop", args.stop)) if v is not None}
        return "POST", f"{_under(args.host)}/workloads", body
    hosts, gpus, event = _host_selector(args), _gpu_selector(args.gpu), _event_body(args)
    if isinstance(hosts, dict) and list(hosts) == ["hosts"] and len(hosts["hosts"]) == 1:  # one host: its paths
        host = hosts["hosts"][0]
        if isinstance(gpus, list) and len(gpus) == 1 and command in ("xid", "event") and not _is_host_event(event):
            return "POST", f"{V1}/hosts/{host}/gpus/{gpus[0]}/events", event
        return "POST", f"{V1}/hosts/{host}/events", {"event": event, "gpus": gpus}
    body = {"event": event, "gpus": gpus}
    return "POST", f"{V1}/events", body if hosts == "all" else {**body, "hosts": hosts}


def _is_host_event(event: Mapping[str, Any]) -> bool:
    return any(key in event for key in ("reachability", "power", "fabric", "cooling"))


def _human(answer: Any) -> str:
    """A few readable lines for the answers people read most; compact JSON for the rest."""
    if isinstance(answer, Mapping) and "events" in answer:
        lines = [_event_line(event) for event in answer["events"]]
        if answer.get("dropped"):
            lines.append(f"({answer['dropped']} older events dropped; the history keeps {answer['limit']})")
        return "\n".join(lines) or "no events"
    if isinstance(answer, Mapping) and "targets" in answer and "id" in answer:
        return _event_line(answer)
    if isinstance(answer, Mapping) and "applied" in answer and "gpu" in answer:
        return f"{answer['id']:>5}  api      {json.dumps(answer['applied'])}  on GPU {answer['gpu']}"
    if isinstance(answer, Mapping) and "gpus" in answer and "scenario_time_seconds" in answer:
        host = answer.get("host", {})
        power = "on" if host.get("powered", True) else "off"
        head = (
            f"scenario time {answer['scenario_time_seconds']} s, reachability {host.get('reachability')}, power {power}"
        )
        gpus = [
            f"  GPU {g['gpu']} {g['model']} {g['temperature_c']} C, faults: {_active(g['faults'])}"
            for g in answer["gpus"]
        ]
        return "\n".join([head, *gpus])
    return json.dumps(answer, sort_keys=True)


def _active(faults: Mapping[str, Any]) -> str:
    on = [name for name, value in faults.items() if value is True]
    return ", ".join(on) or "none"


def _event_line(event: Mapping[str, Any]) -> str:
    hosts = [target["host"] for target in event["targets"]]
    shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
    status = "undone" if event.get("undone_at") else "undoable" if event.get("undoable") else "done"
    t = event.get("scenario_time_s")
    return f"{event['id']:>5}  {event['source']:<8} t={t}s  {json.dumps(event['event'])}  on {shown}  [{status}]"


def run_ctl(argv: Sequence[str], env: Mapping[str, str]) -> int:
    args = build_parser().parse_args(argv)
    endpoint = Endpoint(None, args.url, env.get(TOKEN_VARIABLE)) if args.url else Endpoint(args.socket)
    try:
        method, path, body = request_for(args)
        answer = endpoint.request(method, path, body)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except ServerError as exc:
        print(f"{PROG}: error: {exc} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except NoServerError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2, sort_keys=True) if args.json else _human(answer))
    return 0
