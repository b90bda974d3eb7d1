//! Traces: the `tracing` spans of requests, use cases, database and Redis operations and
//! password hashing, sent as OpenTelemetry spans over OTLP/HTTP (protobuf) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Off
//! otherwise: no exporter, no OpenTelemetry layer, the spans go to the logs only.
//!
//! Only spans are exported, never log events (an audit event holds an IP and a user id),
//! and only the service's own (`auth_*` targets, INFO and above). The spans of use cases,
//! database and Redis operations and hashing have the target [`TRACE_ONLY`]: the logs
//! leave them out (a log line's `span` stays the request's, with its `request_id`), so
//! with traces off nothing is interested in them and they are never even created. Span fields are chosen
//! to hold no personal data, token or key: route patterns, methods, status codes, use case
//! and store method names, Redis commands and script names.
//!
//! An incoming W3C `traceparent` (with its `tracestate`) is continued: the request's span
//! becomes a child of the caller's. While traces are on, every JSON log line written inside
//! a span carries `trace_id` and `span_id`.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{Config, TraceSampler};

/// The target of the spans that exist for traces only (the adapters and the domain name
/// it as a literal: `#[instrument(target = …)]` takes no constant).
pub const TRACE_ONLY: &str = "auth_trace";

/// The logs' filter beside `RUST_LOG`'s: everything but the [`TRACE_ONLY`] spans.
pub fn not_trace_only(meta: &tracing::Metadata<'_>) -> bool {
    !(meta.is_span() && meta.target() == TRACE_ONLY)
}

/// Set once the OpenTelemetry layer is installed (traces are a property of the process:
/// its one subscriber).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporter of a process that traces: [`Traces::shutdown`] sends the spans still
/// queued.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Exports the spans still queued and stops the exporter (bounded by the SDK's export
    /// timeout). Called once the server has stopped.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(error = %err, "traces: the last spans could not be exported");
        }
    }
}

/// The sampler `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` name.
fn sampler(config: &Config) -> Sampler {
    let ratio = config.otel_traces_sampler_arg.unwrap_or(1.0);
    match config.otel_traces_sampler {
        TraceSampler::AlwaysOn => Sampler::AlwaysOn,
        TraceSampler::AlwaysOff => Sampler::AlwaysOff,
        TraceSampler::TraceIdRatio => Sampler::TraceIdRatioBased(ratio),
        TraceSampler::ParentbasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        TraceSampler::ParentbasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        TraceSampler::ParentbasedTraceIdRatio => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
    }
}

/// When the configuration names an endpoint: the layer that turns spans into OpenTelemetry
/// spans (for the subscriber's layers), and the exporter to shut down at the end. Must run
/// outside an async runtime (the HTTP client is a blocking one, with a runtime of its own).
pub fn pipeline<S>(config: &Config) -> Result<Option<(impl Layer<S>, Traces)>, String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(endpoint) = config.traces_endpoint() else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_headers(config.otlp_headers().into_iter().collect())
        .build()
        .map_err(|e| format!("traces: cannot build the OTLP exporter: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.otel_service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler(config))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("auth-http");
    // Spans only (a log event would become a span event, with its fields: an audit
    // event's IP and user id), and the service's own.
    let only_ours = tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_span()
            && meta.target().starts_with("auth_")
            && *meta.level() <= tracing::Level::INFO
    });
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(only_ours);
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some((layer, Traces { provider })))
}

/// Reads W3C trace context from request headers.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes `span` (a request's) continue the trace of the request's `traceparent` and
/// `tracestate`, when they are valid; otherwise it starts a trace of its own.
pub fn continue_remote(span: &tracing::Span, headers: &HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The trace and span ids (W3C hex) of the current span (the innermost: a log line inside
/// a database operation names that operation's span), when it belongs to a trace.
///
/// Called while an event is being formatted: `Span::current()` finds the span there because
/// the binary's subscriber is the global default (`tracing` answers "no span" inside an
/// event's dispatch only under a scoped one, which the binary never sets).
fn current_ids() -> Option<(String, String)> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

/// A JSON event format that adds `trace_id` and `span_id` to each line written inside a
/// traced span (the inner format writes one JSON object per line).
#[derive(Debug)]
pub struct WithTraceIds<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let ids = if enabled() { current_ids() } else { None };
        let Some((trace_id, span_id)) = ids else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.trim_end().strip_suffix('}') {
            Some(object) => {
                let comma = if object.trim_end().ends_with('{') {
                    ""
                } else {
                    ","
                };
                writeln!(
                    writer,
                    "{object}{comma}\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
                )
            }
            None => writer.write_str(&line),
        }
    }
}
