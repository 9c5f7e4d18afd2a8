//! The warehouse's rows of a time range as calls: every reader of history (replay, suggest, tune,
//! the diff's counts) goes through [`for_each_row`], which keeps `scan` the one place that knows how
//! the warehouse is opened and ordered.

use std::path::Path;

use verdict_ingest::Warehouse;
use verdict_policy::{Args, Call, Recorded};

use crate::error::Result;
use crate::scan::{self, BatchView};

/// One warehouse row of the range, in `(ts, event_id)` order.
pub(crate) struct Row<'a> {
    /// The decoded batch holding the row, for the columns a reader needs beyond the call.
    pub view: &'a BatchView,
    /// The row's index in `view`.
    pub i: usize,
    /// The row as a `tools/call`; `None` for other methods (`initialize`, `tools/list` ...) and for
    /// rows without a tool.
    pub call: Option<Call<'a>>,
}

impl Row<'_> {
    pub fn ts(&self) -> i64 {
        self.view.ts[self.i]
    }

    pub fn event_id(&self) -> &str {
        self.view.event_id.value(self.i)
    }

    pub fn recorded_rule(&self) -> Option<&str> {
        self.view.rule(self.i)
    }

    pub fn recorded(&self) -> Recorded {
        Recorded {
            decision: self.view.decisions[self.i],
            upstream_status: self.view.upstream(self.i),
        }
    }
}

/// Calls `f` for every row with `lo <= ts < hi`, in `(ts, event_id)` order; stops at the first error.
pub(crate) fn for_each_row(
    warehouse: &Path,
    lo: Option<i64>,
    hi: Option<i64>,
    mut f: impl FnMut(&Row<'_>) -> Result<()>,
) -> Result<()> {
    let wh = Warehouse::open_for_read(warehouse)?;
    let days = scan::plan(&wh, lo, hi)?;
    let (lo, hi) = (lo.unwrap_or(i64::MIN), hi.unwrap_or(i64::MAX));
    let mut keys: Vec<&str> = Vec::with_capacity(16);
    scan::for_each_row(&days, |v: &BatchView, i: usize| {
        let ts = v.ts[i];
        if ts < lo || ts >= hi {
            return Ok(());
        }
        let tool = v.tool(i);
        let is_call = matches!((v.method(i), tool), (Some("tools/call") | None, Some(_)));
        let Some(tool) = tool.filter(|_| is_call) else {
            return f(&Row {
                view: v,
                i,
                call: None,
            });
        };
        let mut kbuf = recycle(std::mem::take(&mut keys));
        let has_keys = v.arg_keys_into(i, &mut kbuf);
        let call = Call {
            ts_micros: ts,
            tool,
            identity: v.identity(i),
            identity_id: v.identity_id(i),
            session: v.session(i),
            server: v.server(i),
            arg_keys: if has_keys { Some(&kbuf) } else { None },
            args: v.args(i).map(Args::Json),
            recorded: Some(Recorded {
                decision: v.decisions[i],
                upstream_status: v.upstream(i),
            }),
        };
        let result = f(&Row {
            view: v,
            i,
            call: Some(call),
        });
        keys = recycle(kbuf);
        result
    })
}

/// Empties a vector of borrowed strings and gives its allocation a new lifetime.
fn recycle<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}
