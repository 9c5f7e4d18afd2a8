//! Policy evaluation throughput: a generated policy (20 tools with per-tool limits, regex/numeric/in
//! deny_if rules, all_tools limits) and 100k generated calls from 50 identities, evaluated in time order.
//! Run: `cargo bench -p verdict-policy --bench evaluate -- --quick`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use verdict_policy::{Args, Call, Evaluator, Policy, Recorded, RecordedDecision};

const TOOLS: usize = 20;
const IDENTITIES: usize = 50;
const CALLS: usize = 100_000;

fn policy() -> Policy {
    let mut tools = serde_json::Map::new();
    for i in 0..TOOLS {
        let mut rule = json!({
            "limits": [{"counter": format!("tool{i:02}-per-minute"), "window": "minute", "max": 40}]
        });
        match i % 4 {
            0 => {
                rule["require"] = json!(["args.reason"]);
                rule["deny_if"] = json!([
                    {"conditions": [{"path": "args.amount", "op": "gt", "value": 10000}],
                     "on_deny": "Charges over 10000 need finance sign-off."},
                    {"conditions": [{"path": "args.currency", "op": "not_in", "value": ["EUR", "USD", "GBP"]}],
                     "on_deny": "Unsupported currency."}
                ]);
            }
            1 => {
                rule["deny_if"] = json!([
                    {"id": "no-drop", "conditions": [{"path": "args.query", "op": "regex", "value": "(?i)\\bdrop\\s+table\\b"}],
                     "on_deny": "No DDL."},
                    {"conditions": [{"path": "args.limit", "op": "gte", "value": 1000},
                                    {"path": "args.table", "op": "eq", "value": "payments"}],
                     "on_deny": "Too many rows."}
                ]);
            }
            2 => {
                rule["deny_if"] = json!([
                    {"conditions": [{"path": "args.path", "op": "contains", "value": ".."}], "on_deny": "No traversal."}
                ]);
                rule["limits"] = json!([{"counter": "writes", "window": "hour", "max": 2000, "scope": "session"}]);
            }
            _ => {}
        }
        tools.insert(format!("tool{i:02}"), rule);
    }
    let doc = json!({
        "version": "1",
        "default": "deny",
        "hide": ["session_destroy"],
        "all_tools": {"limits": [
            {"counter": "calls-per-minute", "window": "minute", "max": 120, "scope": "grant"},
            {"counter": "burst", "window": "second", "max": 20, "scope": "session", "sliding": true},
            {"counter": "server-day", "window": "day", "max": 1000000, "scope": "server"}
        ]},
        "tools": tools,
    });
    Policy::from_json_str(&doc.to_string()).expect("bench policy is valid")
}

/// The generated input, laid out like the replay driver sees it: dictionary-like string columns (a few
/// hundred distinct names), a pool of argument objects (parsed and as JSON text), and each row's
/// top-level keys as a sub-slice of one shared key column.
struct Input {
    rows: Vec<Row>,
    args: Vec<Value>,
    args_text: Vec<String>,
    keys: Vec<&'static str>,
}

struct Row {
    ts: i64,
    tool: &'static str,
    identity: &'static str,
    session: &'static str,
    server: &'static str,
    /// Index into `Input::args` / `Input::args_text`.
    args: usize,
    /// Range of `Input::keys`.
    keys: (usize, usize),
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn input() -> Input {
    // A small deterministic generator (xorshift), so the bench needs no extra dependency.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let tools: Vec<&'static str> = (0..23)
        .map(|t| match t {
            20 => "session_destroy".to_owned(),
            21 | 22 => format!("unlisted{t}"),
            t => format!("tool{t:02}"),
        })
        .map(leak)
        .collect();
    let identities: Vec<&'static str> = (0..IDENTITIES)
        .map(|i| leak(format!("grant-{i:02}")))
        .collect();
    let sessions: Vec<&'static str> = (0..IDENTITIES * 4)
        .map(|i| leak(format!("sess-{:02}-{}", i / 4, i % 4)))
        .collect();

    // 4 kinds of arguments x 64 variants each.
    let mut args = Vec::new();
    for kind in 0..4 {
        for _ in 0..64 {
            let r = next();
            let currency = ["EUR", "USD", "JPY"][(r >> 32) as usize % 3];
            let query = if (r >> 40) % 10 == 0 {
                "DROP TABLE users"
            } else {
                "select * from orders where id = 42"
            };
            let path = if (r >> 40) % 20 == 0 {
                "../etc/passwd"
            } else {
                "docs/readme.md"
            };
            args.push(match kind {
                0 => {
                    json!({"reason": "refund", "amount": (r >> 16) % 15_000, "currency": currency})
                }
                1 => json!({"query": query, "limit": (r >> 44) % 1500, "table": "payments"}),
                2 => json!({"path": path}),
                _ => json!({"url": "https://example.com"}),
            });
        }
    }
    let args_text: Vec<String> = args.iter().map(Value::to_string).collect();
    let mut keys = Vec::new();
    let key_ranges: Vec<(usize, usize)> = args
        .iter()
        .map(|a| {
            let start = keys.len();
            if let Some(m) = a.as_object() {
                keys.extend(m.keys().map(|k| leak(k.clone())));
            }
            (start, keys.len())
        })
        .collect();

    let start = 1_714_550_400_000_000_i64; // 2024-05-01T08:00:00Z
    let rows = (0..CALLS)
        .map(|i| {
            let r = next();
            let tool = (r % 23) as usize;
            let identity = (r >> 8) as usize % IDENTITIES;
            let arg = (tool % 4) * 64 + (r >> 20) as usize % 64;
            Row {
                // 5 ms apart: 100k calls span ~8 minutes, so fixed and sliding windows roll.
                ts: start + i as i64 * 5_000,
                tool: tools[tool],
                identity: identities[identity],
                session: sessions[identity * 4 + (r >> 50) as usize % 4],
                server: ["stripe", "github", "postgres"][(r >> 56) as usize % 3],
                args: arg,
                keys: key_ranges[arg],
            }
        })
        .collect();
    Input {
        rows,
        args,
        args_text,
        keys,
    }
}

/// The call view of a row, without argument values.
fn base<'a>(input: &'a Input, r: &Row, recorded: Option<Recorded>) -> Call<'a> {
    Call {
        identity: Some(r.identity),
        identity_id: None,
        session: Some(r.session),
        server: Some(r.server),
        arg_keys: Some(&input.keys[r.keys.0..r.keys.1]),
        recorded,
        ..Call::new(r.ts, r.tool)
    }
}

fn bench(c: &mut Criterion) {
    let policy = policy();
    let input = input();
    let recorded = Some(Recorded {
        decision: RecordedDecision::Allow,
        upstream_status: Some(200),
    });
    let with_values: Vec<Call<'_>> = input
        .rows
        .iter()
        .map(|r| Call {
            args: Some(Args::Value(&input.args[r.args])),
            ..base(&input, r, recorded)
        })
        .collect();
    let with_text: Vec<Call<'_>> = input
        .rows
        .iter()
        .map(|r| Call {
            args: Some(Args::Json(&input.args_text[r.args])),
            ..base(&input, r, recorded)
        })
        .collect();
    let keys_only: Vec<Call<'_>> = input
        .rows
        .iter()
        .map(|r| base(&input, r, recorded))
        .collect();

    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(CALLS as u64));
    for (name, calls) in [
        ("parsed_args", &with_values),
        ("json_text_args", &with_text),
        ("arg_keys_only", &keys_only),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut evaluator = Evaluator::new(&policy);
                let mut charged = 0_usize;
                for call in calls {
                    let v = evaluator.evaluate(black_box(call));
                    charged += usize::from(v.charged);
                }
                charged
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
