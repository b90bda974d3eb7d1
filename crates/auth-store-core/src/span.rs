//! The trace span of one database operation, the same for every SQL adapter.

/// The span of one database operation on `system` (`postgresql`, `sqlite`): a child of the
/// current span, or none at all outside any (the outbox poll, the replica checks: a trace of
/// their own every few seconds would bury the requests' traces). `op` is the store method's
/// name; never SQL or its parameters.
pub fn db_span(system: &'static str, op: &'static str) -> tracing::Span {
    if tracing::Span::current().is_none() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        target: "auth_trace",
        "db",
        otel.kind = "client",
        db.system = system,
        db.operation = op
    )
}
