"""Sends the logs, spans and counter points a test plans, with the OpenTelemetry Python SDK and
its OTLP exporters, and prints the ids the SDK gave the spans.

Usage: otlp_send_plan.py grpc http://127.0.0.1:4317 < plan.json
       otlp_send_plan.py http http://127.0.0.1:4318 < plan.json

The plan (JSON on standard input):
{
  "service": "py-grpc",                              # resource service.name
  "resource": {"deployment.environment": "e2e"},     # more resource attributes
  "scope": ["e2e-scope", "1.0"],                     # instrumentation scope name and version
  "logs": [{"time_ns": 1, "severity_number": 9, "severity_text": "INFO", "body": "...",
            "attributes": {"test.id": "...", "seq": 3}}],
  "spans": [{"name": "...", "start_ns": 1, "end_ns": 2, "parent": null or index of an
             earlier span, "attributes": {...}}],
  "counters": [{"name": "orders", "value": 5, "attributes": {"shop": "north"}}]
}

Prints {"spans": [{"name", "trace_id", "span_id", "parent_span_id"}]} (hex ids), in plan order.
The providers are shut down before it prints, so everything was exported (or the export failed,
which the SDK logs on standard error).
"""

import json
import sys

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

protocol, endpoint = sys.argv[1], sys.argv[2]
plan = json.load(sys.stdin)

if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    def settings(signal):
        return {"endpoint": endpoint, "insecure": True, "timeout": 5}

elif protocol == "http":
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    def settings(signal):
        return {"endpoint": f"{endpoint}/v1/{signal}", "timeout": 5}

else:
    sys.exit(f"unknown protocol {protocol!r}: use grpc or http")

resource = Resource.create({"service.name": plan["service"], **plan.get("resource", {})})
scope_name, scope_version = plan.get("scope", ["e2e-scope", "1.0"])

tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(**settings("traces"))))
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(
    BatchLogRecordProcessor(OTLPLogExporter(**settings("logs")))
)
# Exported once, at shutdown.
reader = PeriodicExportingMetricReader(
    OTLPMetricExporter(**settings("metrics")), export_interval_millis=3_600_000
)
meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

tracer = tracer_provider.get_tracer(scope_name, scope_version)
logger = logger_provider.get_logger(scope_name, scope_version)
meter = meter_provider.get_meter(scope_name, scope_version)

started = []
for planned in plan.get("spans", []):
    context = None
    if planned.get("parent") is not None:
        context = trace.set_span_in_context(started[planned["parent"]])
    span = tracer.start_span(
        planned["name"],
        context=context,
        start_time=planned["start_ns"],
        attributes=planned.get("attributes", {}),
    )
    started.append(span)
for span, planned in zip(started, plan.get("spans", [])):
    span.end(end_time=planned["end_ns"])

for record in plan.get("logs", []):
    logger.emit(
        timestamp=record["time_ns"],
        severity_number=SeverityNumber(record["severity_number"]),
        severity_text=record["severity_text"],
        body=record["body"],
        attributes=record.get("attributes", {}),
    )

counters = {}
for point in plan.get("counters", []):
    if point["name"] not in counters:
        counters[point["name"]] = meter.create_counter(point["name"])
    counters[point["name"]].add(point["value"], point.get("attributes", {}))

tracer_provider.shutdown()
logger_provider.shutdown()
meter_provider.shutdown()


def ids(span):
    context = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
    }


print(json.dumps({"spans": [ids(span) for span in started]}))
