"""A real Prometheus (Debian's 2.42 from .peers/) on a free loopback port, scraping the exporter every second,
optionally with alert rule files loaded; PromQL and alert queries over its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

from tests.conftest import PEERS, free_port, http_get

PROMETHEUS = PEERS / "prometheus" / "usr" / "bin" / "prometheus"
JOB = "gpu-metrics"  # the job name of collector-config/prometheus.yml, which the alert rules know


class PrometheusServer:
    def __init__(self, folder: Path, target_port: int, rule_files: tuple[Path, ...] = ()) -> None:
        assert PROMETHEUS.exists(), f"{PROMETHEUS} missing: run `make peers` (tools/install-peers.sh)"
        folder.mkdir(parents=True, exist_ok=True)
        rules = []
        for rule_file in rule_files:
            shutil.copy(rule_file, folder / rule_file.name)
            rules.append(rule_file.name)
        config = folder / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: {json.dumps(rules)}\n"
            f"scrape_configs:\n  - job_name: {JOB}\n    honor_labels: true\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        self.port = free_port()
        self._log = (folder / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant query's result; [] while Prometheus is starting. A bad query fails the test."""
        try:
            status, body, _ = http_get(f"{self.base}/api/v1/query?query={urllib.parse.quote(promql)}")
        except OSError:
            return []
        if status == 503:
            return []
        assert status == 200, f"{promql}: HTTP {status} {body[:300]!r}"
        result = json.loads(body)["data"]["result"]
        assert isinstance(result, list)
        return result

    def alerts(self) -> list[dict[str, Any]]:
        try:
            status, body, _ = http_get(f"{self.base}/api/v1/alerts")
        except OSError:
            return []
        return list(json.loads(body)["data"]["alerts"]) if status == 200 else []

    def wait_for(self, promql: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"no data for {promql} within {timeout:.0f} s")

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
