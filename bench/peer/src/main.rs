//! peer-bench: verdict's evaluator against a general-purpose policy engine (regorus, Rego) on the same
//! in-memory calls. See README.md.
//!
//! Usage: `peer-bench INPUT.jsonl [N]` (N: the first N lines, default 1,000,000).
//! Env: `PEER_POLICY_JSON` (default `../policies/bench.json`), `PEER_POLICY_REGO` (default `policy.rego`),
//! both relative to this crate's directory.

// A benchmark program reports on stdout/stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::error::Error;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::vm::RegoVM;
use regorus::{Engine, Rc, Value as RValue};
use serde_json::Value as JValue;
use verdict_policy::{Args, Call, Evaluator, Outcome, Policy, Recorded, RecordedDecision};

type Res<T> = Result<T, Box<dyn Error>>;

const ENTRY: &str = "data.verdict.bench.decision";
const WARMUP: usize = 1_000;

/// One pre-parsed `tools/call` line. Strings are interned (leaked once, shared by every row).
struct Row {
    ts: i64,
    tool: &'static str,
    identity: Option<&'static str>,
    identity_id: Option<&'static str>,
    session: Option<&'static str>,
    server: Option<&'static str>,
    keys: &'static [&'static str],
    /// Index into `Input::args_*` when the line holds `args`.
    args: Option<u32>,
    recorded: Recorded,
    /// The peer's pre-converted pieces of the input (interned strings and arrays, converted args).
    p_tool: RValue,
    p_keys: RValue,
}

struct Input {
    rows: Vec<Row>,
    args_json: Vec<JValue>,
    args_text: Vec<String>,
    args_rego: Vec<RValue>,
    lines: usize,
}

#[derive(Default)]
struct Interner {
    strs: HashMap<String, &'static str>,
    keys: HashMap<Vec<String>, (&'static [&'static str], RValue)>,
    rstrs: HashMap<&'static str, RValue>,
}

impl Interner {
    fn str(&mut self, s: &str) -> &'static str {
        if let Some(v) = self.strs.get(s) {
            return v;
        }
        let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
        self.strs.insert(s.to_owned(), leaked);
        leaked
    }

    fn rstr(&mut self, s: &'static str) -> RValue {
        self.rstrs
            .entry(s)
            .or_insert_with(|| RValue::from(s))
            .clone()
    }

    fn keys(&mut self, keys: Vec<String>) -> (&'static [&'static str], RValue) {
        if let Some(v) = self.keys.get(&keys) {
            return v.clone();
        }
        let strs: Vec<&'static str> = keys.iter().map(|k| self.str(k)).collect();
        let rv = RValue::from(strs.iter().map(|k| RValue::from(*k)).collect::<Vec<_>>());
        let v = (&*Box::leak(strs.into_boxed_slice()), rv);
        self.keys.insert(keys, v.clone());
        v
    }
}

/// RFC 3339 (`2026-11-02T00:00:00.250Z`, `...+01:00`) to UTC microseconds.
fn parse_ts(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let mut scale = 100_000i64;
        for c in frac.bytes().take(6) {
            micros += i64::from(c - b'0') * scale;
            scale /= 10;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset * 60;
    Some(secs * 1_000_000 + micros)
}

/// Reads the first `n` lines; keeps `tools/call` rows, in replay order `(ts, line)`. Not timed.
fn load(path: &str, n: usize) -> Res<Input> {
    let reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let mut int = Interner::default();
    let mut rows = Vec::new();
    let (mut args_json, mut args_text, mut args_rego) = (Vec::new(), Vec::new(), Vec::new());
    let mut lines = 0;
    for line in reader.lines().take(n) {
        let line = line?;
        lines += 1;
        let r: JValue = serde_json::from_str(&line)?;
        if r["method"].as_str() != Some("tools/call") {
            continue;
        }
        let Some(tool) = r["tool"].as_str() else {
            continue;
        };
        let ts = r["timestamp"]
            .as_str()
            .and_then(parse_ts)
            .ok_or_else(|| format!("line {lines}: bad timestamp"))?;
        let mut opt = |k: &str| r[k].as_str().map(|s| int.str(s));
        let (identity, identity_id, session, server) = (
            opt("grant_label"),
            opt("grant_id"),
            opt("session_id"),
            opt("server"),
        );
        let tool = int.str(tool);
        let rule = r["rule"].as_str().unwrap_or("");
        // PolicyLayer writes a rate limit as a deny whose rule points into a `limits` array.
        let decision = match r["decision"].as_str() {
            Some("deny") if rule.contains("/limits/") => RecordedDecision::RateLimited,
            Some(d) => RecordedDecision::from_name(d),
            None => RecordedDecision::Unknown,
        };
        let upstream_status = r["upstream_status"]
            .as_i64()
            .and_then(|v| i32::try_from(v).ok());
        let keys: Vec<String> = r["arg_keys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let (keys, p_keys) = int.keys(keys);
        let args = match r.get("args") {
            Some(a) if !a.is_null() => {
                args_text.push(a.to_string());
                args_rego.push(RValue::from(a.clone()));
                args_json.push(a.clone());
                Some(u32::try_from(args_json.len() - 1)?)
            }
            _ => None,
        };
        rows.push(Row {
            ts,
            tool,
            identity,
            identity_id,
            session,
            server,
            keys,
            args,
            recorded: Recorded {
                decision,
                upstream_status,
            },
            p_tool: int.rstr(tool),
            p_keys,
        });
    }
    rows.sort_by_key(|r| r.ts); // stable: ties keep line order
    Ok(Input {
        rows,
        args_json,
        args_text,
        args_rego,
        lines,
    })
}

/// verdict's view of a row. `text`: arguments as the log's JSON text (what replay reads from the
/// decision table) instead of the pre-parsed value.
fn call<'a>(input: &'a Input, r: &'a Row, text: bool) -> Call<'a> {
    Call {
        identity: r.identity,
        identity_id: r.identity_id,
        session: r.session,
        server: r.server,
        arg_keys: Some(r.keys),
        args: r.args.map(|i| {
            if text {
                Args::Json(&input.args_text[i as usize])
            } else {
                Args::Value(&input.args_json[i as usize])
            }
        }),
        recorded: Some(r.recorded),
        ..Call::new(r.ts, r.tool)
    }
}

/// Times verdict over every call in order, with a fresh evaluator (after an untimed warm-up on another).
fn time_verdict<'p>(
    policy: &'p Policy,
    input: &Input,
    text: bool,
) -> (Duration, Vec<(Outcome, &'p str)>) {
    let mut warm = Evaluator::new(policy);
    for r in input.rows.iter().take(WARMUP) {
        black_box(warm.evaluate(&call(input, r, text)));
    }
    let mut best = Duration::MAX;
    let mut out = Vec::with_capacity(input.rows.len());
    for _ in 0..repeat() {
        out.clear();
        let mut ev = Evaluator::new(policy);
        let start = Instant::now();
        for r in &input.rows {
            let v = ev.evaluate(&call(input, r, text));
            out.push((v.outcome, v.rule));
        }
        best = best.min(start.elapsed());
        black_box(&out);
    }
    (best, out)
}

/// How many times each loop is timed (the best time is reported): `PEER_REPEAT`, default 3.
fn repeat() -> usize {
    std::env::var("PEER_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// The interned object keys of the peer's input and output documents.
struct Keys {
    tool: RValue,
    arg_keys: RValue,
    args: RValue,
    outcome: RValue,
    rule: RValue,
}

impl Keys {
    fn new() -> Self {
        Self {
            tool: RValue::from("tool"),
            arg_keys: RValue::from("arg_keys"),
            args: RValue::from("args"),
            outcome: RValue::from("outcome"),
            rule: RValue::from("rule"),
        }
    }

    /// The input document of one call: `{"tool", "arg_keys", "args"?}` (per call, timed).
    fn input(&self, input: &Input, r: &Row) -> RValue {
        let mut v = RValue::new_object();
        if let Ok(o) = v.as_object_mut() {
            o.insert(self.tool.clone(), r.p_tool.clone());
            o.insert(self.arg_keys.clone(), r.p_keys.clone());
            if let Some(i) = r.args {
                o.insert(self.args.clone(), input.args_rego[i as usize].clone());
            }
        }
        v
    }

    /// The outcome code and rule of a `decision` value (per call, timed).
    fn output(&self, v: &RValue) -> (u8, Option<Rc<str>>) {
        let Ok(o) = v.as_object() else {
            return (PEER_ERROR, None);
        };
        let outcome = match o.get(&self.outcome) {
            Some(RValue::String(s)) => match &**s {
                "allow" => 0,
                "deny" => 1,
                "approval_required" => 3,
                _ => PEER_ERROR,
            },
            _ => PEER_ERROR,
        };
        let rule = match o.get(&self.rule) {
            Some(RValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        (outcome, rule)
    }
}

const PEER_ERROR: u8 = 255;

fn code(o: Outcome) -> u8 {
    match o {
        Outcome::Allow => 0,
        Outcome::Deny => 1,
        Outcome::RateLimited => 2,
        Outcome::ApprovalRequired => 3,
        Outcome::Indeterminate => 4,
    }
}

type PeerOut = Vec<(u8, Option<Rc<str>>)>;

/// Times `eval` (set the input, evaluate) over every call, after an untimed warm-up.
fn time_peer(
    input: &Input,
    keys: &Keys,
    mut eval: impl FnMut(RValue) -> Result<RValue, String>,
) -> (Duration, PeerOut) {
    for r in input.rows.iter().take(WARMUP) {
        let _ = black_box(eval(keys.input(input, r)));
    }
    let mut best = Duration::MAX;
    let mut out = Vec::with_capacity(input.rows.len());
    for _ in 0..repeat() {
        out.clear();
        let start = Instant::now();
        for r in &input.rows {
            let res = match eval(keys.input(input, r)) {
                Ok(v) => keys.output(&v),
                Err(_) => (PEER_ERROR, None),
            };
            out.push(res);
        }
        best = best.min(start.elapsed());
        black_box(&out);
    }
    (best, out)
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// bench.json without any `limits`.
fn without_limits(doc: &JValue) -> JValue {
    let mut doc = doc.clone();
    if let Some(o) = doc.as_object_mut() {
        if let Some(all) = o.get_mut("all_tools").and_then(JValue::as_object_mut) {
            all.remove("limits");
        }
        if o.get("all_tools")
            .and_then(JValue::as_object)
            .is_some_and(|a| a.is_empty())
        {
            o.remove("all_tools");
        }
        if let Some(tools) = o.get_mut("tools").and_then(JValue::as_object_mut) {
            for rule in tools.values_mut() {
                if let Some(r) = rule.as_object_mut() {
                    r.remove("limits");
                }
            }
        }
    }
    doc
}

struct Agreement {
    compared: usize,
    agree: usize,
    disagree: usize,
    indeterminate: usize,
    indeterminate_peer: [usize; 4],
    peer_errors: usize,
    /// Agreed calls by the step that decided: hidden, default deny, require, deny_if, approval, allow.
    by_step: [usize; 6],
}

impl Agreement {
    fn steps(&self) -> String {
        let names = [
            "hidden",
            "default deny",
            "require",
            "deny_if",
            "approval",
            "allow",
        ];
        names
            .iter()
            .zip(self.by_step)
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn step(rule: &str) -> usize {
    match rule {
        "(hidden)" => 0,
        "(default deny)" => 1,
        "" => 5,
        r if r.contains("/require/") => 2,
        r if r.contains("/deny_if/") => 3,
        _ => 4,
    }
}

fn agreement(verdict: &[(Outcome, &str)], peer: &PeerOut, input: &Input) -> Agreement {
    let mut a = Agreement {
        compared: 0,
        agree: 0,
        disagree: 0,
        indeterminate: 0,
        indeterminate_peer: [0; 4],
        peer_errors: 0,
        by_step: [0; 6],
    };
    let mut shown = 0;
    for (i, ((vo, vr), (po, pr))) in verdict.iter().zip(peer).enumerate() {
        if *po == PEER_ERROR {
            a.peer_errors += 1;
        }
        if *vo == Outcome::Indeterminate {
            a.indeterminate += 1;
            let slot = if *po == PEER_ERROR {
                2
            } else {
                usize::from(*po).min(3)
            };
            a.indeterminate_peer[slot] += 1;
            continue;
        }
        a.compared += 1;
        if code(*vo) == *po && pr.as_deref() == Some(*vr) {
            a.agree += 1;
            a.by_step[step(vr)] += 1;
        } else {
            a.disagree += 1;
            if shown < 10 {
                shown += 1;
                let r = &input.rows[i];
                eprintln!(
                    "disagree: tool={} args={:?} verdict=({vo}, {vr:?}) peer=({po}, {pr:?})",
                    r.tool,
                    r.args.map(|j| &input.args_text[j as usize])
                );
            }
        }
    }
    a
}

/// Hand-made calls that exercise each translation choice: `(tool, arg_keys, args)`.
const EDGE_CASES: &[(&str, &[&str], Option<&str>)] = &[
    (
        "session_destroy",
        &["session_id"],
        Some(r#"{"session_id":"s"}"#),
    ),
    ("export_all", &["kb"], None),
    ("click", &[], None),
    ("delete_session", &["session_id"], None),
    ("create_refund", &[], Some("{}")),
    // require: keys alone, a null value, values taking precedence over keys
    ("type_text", &["selector", "text"], None),
    ("type_text", &["text"], None),
    (
        "type_text",
        &["selector", "text"],
        Some(r##"{"selector":null,"text":"a"}"##),
    ),
    ("type_text", &["selector"], Some(r#"{"text":"a"}"#)),
    ("type_text", &[], Some(r##"{"selector":"#a"}"##)),
    ("type_text", &[], Some(r#"{"selector":false}"#)),
    ("type_text", &[], Some(r#"{"selector":{}}"#)),
    // regex: strings only, "^v9" anchored by the pattern itself
    ("navigate", &["url"], Some(r#"{"url":"v9abc"}"#)),
    ("navigate", &["url"], Some(r#"{"url":"xv9"}"#)),
    ("navigate", &["url"], Some(r#"{"url":"V9"}"#)),
    ("navigate", &["url"], Some(r#"{"url":9}"#)),
    ("navigate", &["url"], Some(r#"{"url":null}"#)),
    ("navigate", &["url"], Some(r#"{"url":["v9"]}"#)),
    ("navigate", &["url"], Some("{}")),
    ("navigate", &[], None),
    // eq true: JSON equality, no coercion
    ("screenshot", &["full_page"], Some(r#"{"full_page":true}"#)),
    ("screenshot", &["full_page"], Some(r#"{"full_page":false}"#)),
    (
        "screenshot",
        &["full_page"],
        Some(r#"{"full_page":"true"}"#),
    ),
    ("screenshot", &["full_page"], Some(r#"{"full_page":1}"#)),
    // gt: numbers only, integers and floats
    (
        "create_charge",
        &[],
        Some(r#"{"reason":"r","amount":10001}"#),
    ),
    (
        "create_charge",
        &[],
        Some(r#"{"reason":"r","amount":10000}"#),
    ),
    (
        "create_charge",
        &[],
        Some(r#"{"reason":"r","amount":10000.5}"#),
    ),
    ("create_charge", &[], Some(r#"{"reason":"r","amount":1e5}"#)),
    (
        "create_charge",
        &[],
        Some(r#"{"reason":"r","amount":"20000"}"#),
    ),
    (
        "create_charge",
        &[],
        Some(r#"{"reason":"r","amount":[20000]}"#),
    ),
    (
        "create_charge",
        &[],
        Some(r#"{"reason":"r","amount":-20000}"#),
    ),
    ("create_charge", &[], Some(r#"{"amount":20000}"#)),
    ("create_charge", &["reason"], None),
    ("session_create_batch", &[], Some(r#"{"count":20000}"#)),
    ("session_create_batch", &[], Some(r#"{"count":5}"#)),
    ("session_create_batch", &["count"], None),
    // contains: substring of a string, element of an array, nothing else
    (
        "send_message",
        &[],
        Some(r#"{"session_id":"s","text":"hello v99 x"}"#),
    ),
    (
        "send_message",
        &[],
        Some(r#"{"session_id":"s","text":["a","v99"]}"#),
    ),
    (
        "send_message",
        &[],
        Some(r#"{"session_id":"s","text":["v999"]}"#),
    ),
    (
        "send_message",
        &[],
        Some(r#"{"session_id":"s","text":{"v99":1}}"#),
    ),
    ("send_message", &[], Some(r#"{"session_id":"s","text":99}"#)),
    ("send_message", &[], Some(r#"{"text":"v99"}"#)),
];

/// Runs the edge cases through verdict (without limits) and both peer modes: `(agree, compared,
/// indeterminate)`. Prints each disagreement.
fn edge_cases(
    policy: &Policy,
    keys: &Keys,
    vm: &mut RegoVM,
    engine: &mut Engine,
) -> Res<(usize, usize, usize)> {
    let (mut agree, mut compared, mut indeterminate) = (0, 0, 0);
    for (tool, arg_keys, args) in EDGE_CASES {
        let args: Option<JValue> = args.map(serde_json::from_str).transpose()?;
        let mut ev = Evaluator::new(policy);
        let v = ev.evaluate(&Call {
            arg_keys: Some(arg_keys),
            args: args.as_ref().map(Args::Value),
            ..Call::new(0, tool)
        });
        if v.outcome == Outcome::Indeterminate {
            indeterminate += 1;
            continue;
        }
        let mut input = RValue::new_object();
        if let Ok(o) = input.as_object_mut() {
            o.insert(keys.tool.clone(), RValue::from(*tool));
            let k: Vec<RValue> = arg_keys.iter().map(|k| RValue::from(*k)).collect();
            o.insert(keys.arg_keys.clone(), RValue::from(k));
            if let Some(a) = &args {
                o.insert(keys.args.clone(), RValue::from(a.clone()));
            }
        }
        vm.set_input(input.clone());
        let by_vm = vm.execute().map_or((PEER_ERROR, None), |r| keys.output(&r));
        engine.set_input(input);
        let by_interp = engine
            .eval_rule(ENTRY.to_owned())
            .map_or((PEER_ERROR, None), |r| keys.output(&r));
        compared += 1;
        let want = (code(v.outcome), Some(v.rule));
        let same = |p: &(u8, Option<Rc<str>>)| p.0 == want.0 && p.1.as_deref() == want.1;
        if same(&by_vm) && same(&by_interp) {
            agree += 1;
        } else {
            eprintln!(
                "edge case disagrees: {tool} {arg_keys:?} {args:?}: verdict ({}, {:?}), RVM {by_vm:?}, \
                 interpreter {by_interp:?}",
                v.outcome, v.rule
            );
        }
    }
    Ok((agree, compared, indeterminate))
}

fn main() -> Res<()> {
    let argv: Vec<String> = std::env::args().collect();
    let Some(path) = argv.get(1) else {
        return Err("usage: peer-bench INPUT.jsonl [N]".into());
    };
    let n: usize = match argv.get(2) {
        Some(s) => s.replace(['_', ','], "").parse()?,
        None => 1_000_000,
    };
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy_json = std::env::var("PEER_POLICY_JSON")
        .map(Into::into)
        .unwrap_or_else(|_| here.join("../policies/bench.json"));
    let policy_rego = std::env::var("PEER_POLICY_REGO")
        .map(Into::into)
        .unwrap_or_else(|_| here.join("policy.rego"));

    // --- Setup (not timed) ---
    let t0 = Instant::now();
    let input = load(path, n)?;
    let load_secs = t0.elapsed().as_secs_f64();
    let calls = input.rows.len();
    eprintln!(
        "loaded {} lines, {calls} tools/call ({} with args) in {load_secs:.1} s",
        input.lines,
        input.args_json.len()
    );

    let with_limits = Policy::from_path(&policy_json)?;
    let doc: JValue = serde_json::from_str(&std::fs::read_to_string(&policy_json)?)?;
    let no_limits = Policy::from_json_str(&without_limits(&doc).to_string())?;

    let rego = std::fs::read_to_string(&policy_rego)?;
    let mut engine = Engine::new();
    engine.add_policy(policy_rego.display().to_string(), rego)?;
    let entry: Rc<str> = ENTRY.into();
    let compiled = engine.compile_with_entrypoint(&entry)?;
    let program = Compiler::compile_from_policy(&compiled, &[ENTRY])?;
    let mut vm = RegoVM::new();
    vm.load_program(program);
    // regorus' fastest configuration ("regular_no_limits" in its RVM benchmark): no timer, no
    // instruction cap (the default cap is 25,000 instructions per evaluation).
    vm.set_execution_timer_config(None);
    vm.set_max_instructions(usize::MAX);
    let keys = Keys::new();
    let hwm_loaded = vm_hwm_kib();

    // --- Hand-made edge cases (not timed): both peer modes against verdict without limits ---
    let edge = edge_cases(&no_limits, &keys, &mut vm, &mut engine)?;

    // --- Timed runs ---
    let (t_a, _) = time_verdict(&with_limits, &input, false);
    let (t_a_text, _) = time_verdict(&with_limits, &input, true);
    let (t_b, out_b) = time_verdict(&no_limits, &input, false);
    let (t_vm, out_vm) = time_peer(&input, &keys, |v| {
        vm.set_input(v);
        vm.execute().map_err(|e| e.to_string())
    });
    let (t_interp, out_interp) = time_peer(&input, &keys, |v| {
        engine.set_input(v);
        engine
            .eval_rule(ENTRY.to_owned())
            .map_err(|e| e.to_string())
    });
    // The cost of building the peer's input documents alone (included in both peer rows).
    let t_inputs = (0..repeat())
        .map(|_| {
            let start = Instant::now();
            for r in &input.rows {
                black_box(keys.input(&input, r));
            }
            start.elapsed()
        })
        .min()
        .unwrap_or_default();

    // --- Agreement ---
    let a_vm = agreement(&out_b, &out_vm, &input);
    let vm_vs_interp = out_vm
        .iter()
        .zip(&out_interp)
        .filter(|(x, y)| x != y)
        .count();

    // --- Report ---
    let secs = |d: Duration| d.as_secs_f64();
    let rate = |d: Duration| calls as f64 / d.as_secs_f64();
    println!(
        "## verdict vs regorus {} (Rego), {calls} tools/call from {path} (best of {} runs each)\n",
        regorus_version(),
        repeat()
    );
    println!("| engine | calls | seconds | calls/s | ns/call |");
    println!("|---|---:|---:|---:|---:|");
    let rows: [(&str, Duration); 6] = [
        ("(a) verdict, with limits (args pre-parsed)", t_a),
        (
            "(a') verdict, with limits (args as JSON text, as replay reads them)",
            t_a_text,
        ),
        ("(b) verdict, without limits", t_b),
        ("(c) regorus RVM: set_input + execute", t_vm),
        ("(c') regorus interpreter: set_input + eval_rule", t_interp),
        ("(of which: building the peer's input documents)", t_inputs),
    ];
    for (name, d) in rows {
        println!(
            "| {name} | {calls} | {:.3} | {:.0} | {:.0} |",
            secs(d),
            rate(d),
            secs(d) * 1e9 / calls as f64
        );
    }
    println!();
    println!("| ratio (verdict throughput / peer throughput) | x |");
    println!("|---|---:|");
    for (name, v, p) in [
        ("(a) with limits / (c) RVM", t_a, t_vm),
        ("(b) without limits / (c) RVM", t_b, t_vm),
        ("(a) with limits / (c') interpreter", t_a, t_interp),
        ("(b) without limits / (c') interpreter", t_b, t_interp),
    ] {
        println!("| {name} | {:.1} |", secs(p) / secs(v));
    }
    println!();
    let [ia, id, _, iap] = a_vm.indeterminate_peer;
    println!(
        "Agreement (b) vs (c), outcome and rule, on calls where verdict is determinate: {} of {} agree, {} disagree \
         ({} indeterminate for verdict not compared: the peer said allow {ia}, deny {id}, approval_required {iap}; \
         peer errors {}). RVM vs interpreter: {vm_vs_interp} differences.",
        a_vm.agree, a_vm.compared, a_vm.disagree, a_vm.indeterminate, a_vm.peer_errors
    );
    println!("Agreed calls by deciding step: {}.", a_vm.steps());
    println!(
        "Hand-made edge cases (null values, keys without values, wrong types, arrays, anchors): {} of {} agree \
         for both peer modes ({} indeterminate for verdict, skipped).",
        edge.0, edge.1, edge.2
    );
    println!(
        "\nPeak RSS (VmHWM): {:.0} MiB at the end; {:.0} MiB after loading the input and both policies (before timing).",
        vm_hwm_kib() as f64 / 1024.0,
        hwm_loaded as f64 / 1024.0
    );
    if a_vm.disagree > 0 || vm_vs_interp > 0 || a_vm.peer_errors > 0 || edge.0 != edge.1 {
        std::process::exit(1);
    }
    Ok(())
}

fn regorus_version() -> &'static str {
    "0.14.1"
}
