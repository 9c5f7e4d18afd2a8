//! The warehouse's rows of a time range as calls: every reader of history (replay, suggest, tune,
//! the diff's counts) goes through [`for_each_row`], which keeps `scan` the one place that knows how
//! the warehouse is opened and ordered.

use verdict_policy::{Args, Call, Recorded};
use verdict_table::{AsOf, Location, Snapshot, Warehouse};

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

/// One snapshot of the warehouse at `location` (the latest, or `as_of`): every pass of one
/// command reads the same version.
pub(crate) fn snapshot(location: &Location, as_of: Option<&AsOf>) -> Result<Snapshot> {
    let wh = Warehouse::new(location.clone())?;
    Ok(verdict_table::block_on(wh.snapshot(as_of))?)
}

/// Calls `f` for every row of `snapshot` with `lo <= ts < hi`, in `(ts, event_id)` order; stops
/// at the first error.
pub(crate) fn for_each_row(
    snapshot: &Snapshot,
    lo: Option<i64>,
    hi: Option<i64>,
    mut f: impl FnMut(&Row<'_>) -> Result<()>,
) -> Result<()> {
    let days = scan::plan(snapshot, lo, hi);
    let (lo, hi) = (lo.unwrap_or(i64::MIN), hi.unwrap_or(i64::MAX));
    let mut keys: Vec<&str> = Vec::with_capacity(16);
    scan::for_each_row(snapshot, &days, |v: &BatchView, i: usize| {
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
