"""A real Prometheus (Debian's 2.42 from .peers/) on a free loopback port, scraping every second what its scrape
config names, optionally with alert rule files loaded; PromQL and alert queries over its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

from tests.conftest import PEERS, free_port, http_get
from tests.polling import wait_until

PROMETHEUS = PEERS / "prometheus" / "usr" / "bin" / "prometheus"
PROMTOOL = PEERS / "prometheus" / "usr" / "bin" / "promtool"
JOB = "gpu-metrics"  # the job name of collector-config/prometheus.yml, which the alert rules know
# evaluation_interval: of the rules and the default step of subqueries ([Ns:] windows), 1 m by default
GLOBAL = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"


def static_scrape(job: str, target_port: int) -> str:
    """A scrape config for one loopback target, keeping the exporter's own labels."""
    return (
        f"  - job_name: {job}\n    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
    )


def sd_scrape(job: str, sd_url: str) -> str:
    """A scrape config whose targets come from HTTP service discovery at ``sd_url``."""
    return f"  - job_name: {job}\n    http_sd_configs:\n      - url: {sd_url}\n        refresh_interval: 2s\n"


class PrometheusServer:
    def __init__(
        self, folder: Path, scrape: str = "", rule_files: tuple[Path, ...] = (), storage: Path | None = None
    ) -> None:
        """``scrape``: scrape configs (static_scrape, sd_scrape); ``storage``: a TSDB folder (default folder/data)."""
        assert PROMETHEUS.exists(), f"{PROMETHEUS} missing: run `make peers` (tools/install-peers.sh)"
        folder.mkdir(parents=True, exist_ok=True)
        rules = []
        for rule_file in rule_files:
            shutil.copy(rule_file, folder / rule_file.name)
            rules.append(rule_file.name)
        config = folder / "prometheus.yml"
        config.write_text(
            GLOBAL + f"rule_files: {json.dumps(rules)}\n" + (f"scrape_configs:\n{scrape}" if scrape else "")
        )
        self.port = free_port()
        self._log_path = folder / "prometheus.log"
        self._log = self._log_path.open("wb")
        self._proc = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={storage or folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant query's result (at time ``at``); [] while Prometheus is starting. A bad query fails the test."""
        url = f"{self.base}/api/v1/query?query={urllib.parse.quote(promql)}"
        try:
            status, body, _ = http_get(url if at is None else f"{url}&time={at}")
        except OSError:
            return []
        if status == 503:
            return []
        assert status == 200, f"{promql}: HTTP {status} {body[:300]!r}"
        result = json.loads(body)["data"]["result"]
        assert isinstance(result, list)
        return result

    def scalar(self, promql: str) -> float | None:
        """The first sample's value, None when there is none."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def alerts(self) -> list[dict[str, Any]]:
        try:
            status, body, _ = http_get(f"{self.base}/api/v1/alerts")
        except OSError:
            return []
        return list(json.loads(body)["data"]["alerts"]) if status == 200 else []

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready() -> bool:
            assert self._proc.poll() is None, self._log_path.read_text()
            return http_get(f"{self.base}/-/ready", timeout=2)[0] == 200

        wait_until(ready, timeout, "Prometheus to be ready", interval=0.2, ignore=(OSError,))

    def wait_for(self, promql: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        return wait_until(lambda: self.query(promql), timeout, f"data for {promql}", interval=0.5)

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
