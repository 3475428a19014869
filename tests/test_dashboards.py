"""The Grafana dashboards (dashboards/): every panel's query, with the dashboard variables substituted as Grafana
does for "All", returns data from a real Prometheus that scraped the exporter while faults happened: XIDs
(`faulty` profile and the control API), clock events (`chaos`), a push target that is down, and a GPU fallen off
the bus (control API). It runs once per dcgm-exporter release (--dcgm-exporter-compat), the dashboards' host_label
variable set to that release's host label."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ExporterProcess, free_port, start_exporter
from tests.control_client import control_event
from tests.polling import wait_until
from tests.prometheus_server import JOB, PrometheusServer, static_scrape

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
COLLECTORS = ROOT / "deploy" / "collectors" / "dcgm-fleet.csv"
# Grafana's built-in interval variables, as a 1 s scrape over a short test run makes sense of them.
BUILTINS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
# NVIDIA's dashboard (grafana/dcgm-exporter-dashboard.json) reads these; the drop-in must read them too.
NVIDIA_METRICS = {
    "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_DEV_FB_USED",
}  # fmt: skip


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in dashboard["templating"]["list"] if v["type"] == "query"]


def substitute(expr: str, dashboard: dict[str, Any], host_label: str = "Hostname") -> str:
    """What Grafana sends with every variable at "All" (its allValue), host_label at ``host_label``, and the
    built-in intervals."""
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    expr = expr.replace("$host_label", host_label)
    for var in variables(dashboard):
        expr = expr.replace(f"${{{var['name']}}}", var["allValue"]).replace(f"${var['name']}", var["allValue"])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        dashboard = load(path)
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                out.append((path.name, f"{panel['title']} [{target['refId']}]", target["expr"]))
    return out


@dataclass(frozen=True)
class Scraped:
    prometheus: PrometheusServer
    host_label: str  # the label the exporter served the host in


@pytest.fixture(scope="module", params=[("4.8.2", "Hostname"), ("4.8.3", "hostname")], ids=lambda p: p[0])
def scraped(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Scraped]:
    release, host_label = request.param
    folder = tmp_path_factory.mktemp("dashboards")
    sock, closed = folder / "metrics.sock", free_port()
    args = ["-f", str(COLLECTORS), "-c", "500", "--update-interval", "0.5", "--uds", str(sock), "--num-gpus", "4",
            "--gpu-profiles", "faulty,stable,chaos,degrading",
            "--push-prometheus-url", f"http://127.0.0.1:{closed}/api/v1/import/prometheus",
            "--dcgm-exporter-compat", release]  # fmt: skip
    env = {"NODE_NAME": "dash-node", "FAKEGPU_SEED": "3"}
    exporter: ExporterProcess = start_exporter(args, env, uds=sock)
    prometheus = PrometheusServer(folder / "prometheus", static_scrape(JOB, exporter.port))
    try:
        prometheus.wait_for('DCGM_EXP_CLOCK_EVENTS_COUNT{clock_event!=""}', timeout=90)
        prometheus.wait_for('count(DCGM_FI_DEV_GPU_TEMP{gpu="3"})')
        control_event(sock, 1, {"xid": 79})
        control_event(sock, 3, {"fault": "fall_off_bus"})
        prometheus.wait_for('DCGM_EXP_XID_ERRORS_COUNT{xid!=""}', timeout=90)
        yield Scraped(prometheus, host_label)
    finally:
        exporter.close()
        prometheus.stop()


def test_dashboards_are_well_formed() -> None:
    assert [p.name for p in DASHBOARDS] == ["dcgm-exporter.json", "gpu-fleet.json"]
    for path in DASHBOARDS:
        dashboard = load(path)
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path
        assert dashboard["templating"]["list"][0]["type"] == "datasource"
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
    dcgm = load(ROOT / "dashboards" / "dcgm-exporter.json")
    assert {"instance", "gpu"} <= {v["name"] for v in variables(dcgm)}
    for path in DASHBOARDS:
        host_label = next(v for v in load(path)["templating"]["list"] if v["name"] == "host_label")
        assert [o["value"] for o in host_label["options"]] == ["Hostname", "hostname"], path
        assert host_label["current"]["value"] == "Hostname", path  # the default release's
    names = set(re.findall(r"\b(DCGM_[A-Z_]+)\b", json.dumps(dcgm["panels"])))
    assert names >= NVIDIA_METRICS


def test_variable_queries_find_values(scraped: Scraped) -> None:
    for path in DASHBOARDS:
        dashboard = load(path)
        for var in variables(dashboard):
            query = substitute(var["query"]["query"], dashboard, scraped.host_label)
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
            assert match, var["query"]
            series, label = match.group(1), match.group(2)
            values = {r["metric"].get(label) for r in scraped.prometheus.query(f"group by ({label}) ({series})")}
            if label in {"namespace", "pod"}:
                continue  # filled once workload attribution labels the series; "All" matches unlabelled ones
            assert values - {None}, f"{path.name}: variable {var['name']} has no values"


@pytest.mark.parametrize(("dashboard", "panel", "expr"), panel_queries(), ids=lambda v: str(v)[:60])
def test_every_panel_query_returns_data(scraped: Scraped, dashboard: str, panel: str, expr: str) -> None:
    expr = substitute(expr, load(ROOT / "dashboards" / dashboard), scraped.host_label)
    result = wait_until(lambda: scraped.prometheus.query(expr), 30, f"data for {dashboard} / {panel}: {expr}",
                        interval=0.5)  # fmt: skip
    grouped = re.match(r"\w+ by \(([^)]*)\)", expr)  # the outermost aggregation keeps the host
    if grouped and "hostname" in grouped.group(1).lower():
        assert all(scraped.host_label in r["metric"] for r in result), f"{dashboard} / {panel}: no host in {expr}"
