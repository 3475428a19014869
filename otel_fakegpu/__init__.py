"""otel-fakegpu: OpenTelemetry-native GPU telemetry with dcgm-exporter-compatible output."""

__version__ = "0.1.0"
