"""Sends logs, spans and metrics with the OpenTelemetry Python SDK and its OTLP exporters.

Usage: otlp_send.py grpc http://127.0.0.1:4317
       otlp_send.py http http://127.0.0.1:4318

What it sends (tests/otlp_receiver.rs checks it arrives as sent): resource service.name
"python-app"; scope "py-scope" 0.1; spans "parent" and "child" (child has http.route);
two log records inside "child" (WARN "low stock" item=apple left=3, ERROR "payment failed"
item=pear retry=true); a counter "orders" with 5 for shop=north and 2 for shop=south.
Prints the child span's ids as JSON: {"trace_id": hex, "span_id": hex}.
"""

import json
import sys

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

protocol, endpoint = sys.argv[1], sys.argv[2]

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

resource = Resource.create({"service.name": "python-app", "deployment.environment": "test"})

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

tracer = tracer_provider.get_tracer("py-scope", "0.1")
logger = logger_provider.get_logger("py-scope", "0.1")
orders = meter_provider.get_meter("py-scope", "0.1").create_counter("orders")

with tracer.start_as_current_span("parent"):
    with tracer.start_as_current_span("child", attributes={"http.route": "/checkout"}) as child:
        context = child.get_span_context()
        logger.emit(
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body="low stock",
            attributes={"item": "apple", "left": 3},
        )
        logger.emit(
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body="payment failed",
            attributes={"item": "pear", "retry": True},
        )
orders.add(5, {"shop": "north"})
orders.add(2, {"shop": "south"})

tracer_provider.shutdown()
logger_provider.shutdown()
meter_provider.shutdown()
print(
    json.dumps(
        {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
    )
)
