//! The timeline of one identity: every call it made, in time order, optionally within one
//! session and a window around an instant, with each tool's risk and a destructive marker.
//! This is the incident responder's "what did this agent do before and after".

use datafusion::logical_expr::{cast, col, lit};
use verdict_schema::col as c;

use crate::catalog::Risk;
use datafusion::dataframe::DataFrame;

use crate::engine::{Engine, QueryOutput, QueryStream};
use crate::error::{Error, Result};
use crate::report::{and_all, or_false, time_filters};

/// The default half-width of the window around `around`: 30 minutes.
pub const DEFAULT_WINDOW_MICROS: i64 = 30 * 60 * 1_000_000;

/// What timeline to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineSpec {
    /// The identity whose calls to list (required).
    pub identity: String,
    /// Only this session.
    pub session: Option<String>,
    /// Centre of the window (UTC microseconds); `None` lists the whole history.
    pub around: Option<i64>,
    /// Half-width of the window (microseconds): calls in `[around - window, around + window]`.
    /// Defaults to [`DEFAULT_WINDOW_MICROS`]; ignored without `around`.
    pub window: Option<i64>,
    /// Keep only the first N calls.
    pub limit: Option<usize>,
}

impl TimelineSpec {
    /// The whole timeline of `identity`.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            session: None,
            around: None,
            window: None,
            limit: None,
        }
    }
}

impl Engine {
    /// Lists the calls of one identity in time order (ties by `event_id`), with the columns
    /// `ts, session, server, method, tool, risk, decision, rule, message, latency_ms,
    /// destructive, event_id`. `risk` is null when the call has no tool; `destructive` is true
    /// for calls of a destructive tool.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] for an empty identity or a window that is not positive;
    /// [`Error::DataFusion`] if the query fails.
    pub async fn timeline(&self, spec: &TimelineSpec) -> Result<QueryOutput> {
        let df = self.timeline_frame(spec).await?;
        self.collect(df).await
    }

    /// [`Engine::timeline`] as a stream of batches, produced as the query runs.
    ///
    /// # Errors
    /// As [`Engine::timeline`].
    pub async fn timeline_stream(&self, spec: &TimelineSpec) -> Result<QueryStream> {
        let df = self.timeline_frame(spec).await?;
        self.stream(df).await
    }

    async fn timeline_frame(&self, spec: &TimelineSpec) -> Result<DataFrame> {
        if spec.identity.is_empty() {
            return Err(Error::InvalidSpec {
                what: "timeline",
                message: "an identity is required".into(),
            });
        }
        let window = spec.window.unwrap_or(DEFAULT_WINDOW_MICROS);
        if window <= 0 {
            return Err(Error::InvalidSpec {
                what: "window",
                message: "must be positive".into(),
            });
        }
        let mut preds = vec![col(c::IDENTITY).eq(lit(spec.identity.as_str()))];
        if let Some(s) = &spec.session {
            preds.push(col(c::SESSION).eq(lit(s.as_str())));
        }
        if let Some(t) = spec.around {
            // The window is inclusive at both ends: until is exclusive, hence + 1.
            preds.extend(time_filters(
                Some(t.saturating_sub(window)),
                Some(t.saturating_add(window).saturating_add(1)),
            ));
        }
        let mut df = self.decisions().await?;
        if let Some(p) = and_all(preds) {
            df = df.filter(p)?;
        }
        let risk = self
            .tool_risk_udf()
            .call(vec![col(c::TOOL), col(c::SERVER)]);
        let df = df.select(vec![
            col(c::TS),
            col(c::SESSION),
            col(c::SERVER),
            col(c::METHOD),
            col(c::TOOL),
            risk.clone().alias("risk"),
            cast(col(c::DECISION), arrow::datatypes::DataType::Utf8).alias(c::DECISION),
            col(c::RULE),
            col(c::MESSAGE),
            col(c::LATENCY_MS),
            or_false(risk.eq(lit(Risk::Destructive.as_str()))).alias("destructive"),
            col(c::EVENT_ID),
        ])?;
        let mut df = df.sort(vec![
            col(c::TS).sort(true, false),
            col(c::EVENT_ID).sort(true, false),
        ])?;
        if let Some(n) = spec.limit {
            df = df.limit(0, Some(n))?;
        }
        Ok(df)
    }
}
