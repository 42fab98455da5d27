//! Tracing spans exported over OTLP to an OpenTelemetry collector (feature `otlp`).
//!
//! Recount's spans (`command` with the aggregate's category, stream and correlation id;
//! `consumer batch` with the checkpoint and the batch's cursors) and an application's own
//! (a `request` span per HTTP request, say) are [`tracing`] spans. [`OtlpTracing`] turns them
//! into OpenTelemetry spans and sends them, in batches from a background thread, to a
//! collector over OTLP/HTTP with protobuf bodies. A span opened inside another (a command in a
//! request's task) becomes its child in the same trace; spans of other tasks (a consumer's
//! batch) share the correlation id as an attribute.
//!
//! The exporter is configured by the standard OpenTelemetry variables:
//!
//! | variable | meaning |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | the collector's base URL (`/v1/traces` is appended), e.g. `http://127.0.0.1:4318` |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | the full URL for traces, used as is (wins over the above) |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT` | request headers (`k=v,k2=v2`) and timeout (ms) |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | the service's name (wins over the one passed in) and other resource attributes |
//! | `OTEL_SDK_DISABLED=true` | no export |
//!
//! [`OtlpTracing::from_env`] returns `None` when no endpoint is set, so an application can
//! always call it and export only where an operator asked for it. Only HTTP with protobuf is
//! built in (collectors listen for it on port 4318); `OTEL_EXPORTER_OTLP_PROTOCOL` other than
//! `http/protobuf` is refused with an error rather than ignored.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! # fn main() -> Result<(), recount::telemetry::otlp::OtlpError> {
//! // Outside any async runtime (in `main`, before the runtime starts), so that the last
//! // flush at the end does not block a runtime thread.
//! let otlp = recount::telemetry::otlp::OtlpTracing::from_env("my-service")?;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(otlp.as_ref().map(|o| o.layer()))
//!     .init();
//! // … run the application …
//! if let Some(otlp) = otlp {
//!     otlp.shutdown()?; // sends what is still buffered
//! }
//! # Ok(())
//! # }
//! ```

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

/// Why the OTLP exporter could not be set up or flushed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (or its traces variant) names a protocol not built in.
    #[error("OTLP protocol {0:?} is not supported here; only http/protobuf is built in")]
    Protocol(String),
    /// The exporter could not be built (an endpoint that is not a URL, say).
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
    /// Flushing or shutting down failed (the collector did not answer, say).
    #[error("OTLP export: {0}")]
    Export(String),
}

/// An OTLP span exporter and the tracer provider around it; [`layer`](Self::layer) plugs it
/// into a [`tracing_subscriber`] registry. Dropping it flushes and shuts down, as
/// [`shutdown`](Self::shutdown) does (which also reports a failure).
#[derive(Debug)]
pub struct OtlpTracing {
    provider: SdkTracerProvider,
    /// Set by [`shutdown`](Self::shutdown), so that the drop after it does nothing.
    shut_down: bool,
}

/// The layer [`OtlpTracing::layer`] returns.
pub type OtlpLayer<S> = tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>;

const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];
const PROTOCOL_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];

fn env_set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl OtlpTracing {
    /// The exporter the `OTEL_*` variables describe (see the module docs), or `None` when
    /// neither endpoint variable is set or `OTEL_SDK_DISABLED` is `true`. `service_name`
    /// names the service unless `OTEL_SERVICE_NAME` does.
    pub fn from_env(service_name: &str) -> Result<Option<Self>, OtlpError> {
        let disabled = env_set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if disabled || !ENDPOINT_VARS.iter().any(|v| env_set(v).is_some()) {
            return Ok(None);
        }
        if let Some(protocol) = PROTOCOL_VARS.iter().find_map(|v| env_set(v)) {
            if protocol.trim() != "http/protobuf" {
                return Err(OtlpError::Protocol(protocol));
            }
        }
        Self::build(service_name, None).map(Some)
    }

    /// An exporter sending to `endpoint`, the full URL of the collector's traces resource
    /// (`http://127.0.0.1:4318/v1/traces`, say), whatever the variables say of the endpoint.
    pub fn with_endpoint(service_name: &str, endpoint: &str) -> Result<Self, OtlpError> {
        Self::build(service_name, Some(endpoint))
    }

    fn build(service_name: &str, endpoint: Option<&str>) -> Result<Self, OtlpError> {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary);
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter
            .build()
            .map_err(|e| OtlpError::Build(e.to_string()))?;
        // `Resource::builder` reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
        let resource = if env_set("OTEL_SERVICE_NAME").is_some() {
            Resource::builder().build()
        } else {
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build()
        };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(OtlpTracing {
            provider,
            shut_down: false,
        })
    }

    /// A layer that turns the spans it sees into OpenTelemetry spans for this exporter. Give
    /// it a filter of its own (`layer().with_filter(…)`) to export other levels than the
    /// console shows: Recount's `consumer batch` spans are at `debug`.
    pub fn layer<S>(&self) -> OtlpLayer<S>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("recount"))
    }

    /// Sends the spans buffered so far and waits for the collector's answer.
    pub fn flush(&self) -> Result<(), OtlpError> {
        self.provider
            .force_flush()
            .map_err(|e| OtlpError::Export(e.to_string()))
    }

    /// Sends what is buffered and stops the exporter; spans closed afterwards are dropped.
    pub fn shutdown(mut self) -> Result<(), OtlpError> {
        self.shut_down = true;
        self.provider
            .shutdown()
            .map_err(|e| OtlpError::Export(e.to_string()))
    }
}

impl Drop for OtlpTracing {
    fn drop(&mut self) {
        if !self.shut_down {
            let _ = self.provider.shutdown();
        }
    }
}
