//! The synthetic PolicyLayer traffic generator: a seeded, allocation-light writer of realistic
//! proxy log lines. It models traffic shape, not a policy: decisions follow fixed shares.

use std::io::{self, Write};

use verdict_schema::time::format_micros;

/// A small, fast, portable PRNG (SplitMix64), so that a seed gives the same bytes everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }

    /// True with probability `p` in per-mille.
    pub fn permille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// The seed.
    pub seed: u64,
    /// The first timestamp, UTC microseconds.
    pub start_micros: i64,
    /// Mean gap between two calls, microseconds.
    pub mean_gap_micros: i64,
    /// Number of grants (identities).
    pub identities: usize,
    /// Per-mille of lines that carry argument values.
    pub args_permille: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            // 2026-11-02T00:00:00Z
            start_micros: 1_793_577_600_000_000,
            mean_gap_micros: 250_000,
            identities: 60,
            args_permille: 100,
        }
    }
}

struct Tool {
    server: &'static str,
    name: &'static str,
    keys: &'static [&'static str],
    weight: u64,
}

const TOOLS: &[Tool] = &[
    Tool {
        server: "leapfrog",
        name: "navigate",
        keys: &["url"],
        weight: 220,
    },
    Tool {
        server: "leapfrog",
        name: "click",
        keys: &["selector"],
        weight: 160,
    },
    Tool {
        server: "leapfrog",
        name: "type_text",
        keys: &["selector", "text"],
        weight: 80,
    },
    Tool {
        server: "leapfrog",
        name: "screenshot",
        keys: &["full_page"],
        weight: 70,
    },
    Tool {
        server: "leapfrog",
        name: "session_create",
        keys: &["profile"],
        weight: 40,
    },
    Tool {
        server: "leapfrog",
        name: "session_create_batch",
        keys: &["count", "profile"],
        weight: 10,
    },
    Tool {
        server: "leapfrog",
        name: "session_list",
        keys: &[],
        weight: 30,
    },
    Tool {
        server: "leapfrog",
        name: "session_destroy",
        keys: &["session_id"],
        weight: 8,
    },
    Tool {
        server: "mcacp",
        name: "open_session",
        keys: &["agent"],
        weight: 25,
    },
    Tool {
        server: "mcacp",
        name: "send_message",
        keys: &["session_id", "text"],
        weight: 90,
    },
    Tool {
        server: "mcacp",
        name: "close_session",
        keys: &["session_id"],
        weight: 20,
    },
    Tool {
        server: "mcacp",
        name: "list_sessions",
        keys: &[],
        weight: 20,
    },
    Tool {
        server: "weknora",
        name: "knowledge_search",
        keys: &["kb", "query"],
        weight: 120,
    },
    Tool {
        server: "weknora",
        name: "get_document",
        keys: &["doc_id"],
        weight: 50,
    },
    Tool {
        server: "weknora",
        name: "create_session",
        keys: &["kb"],
        weight: 15,
    },
    Tool {
        server: "weknora",
        name: "delete_session",
        keys: &["session_id"],
        weight: 6,
    },
    Tool {
        server: "weknora",
        name: "export_all",
        keys: &["kb"],
        weight: 4,
    },
    Tool {
        server: "payments",
        name: "create_charge",
        keys: &["amount", "currency", "reason"],
        weight: 12,
    },
    Tool {
        server: "payments",
        name: "create_refund",
        keys: &["charge_id", "reason"],
        weight: 5,
    },
];

const METHODS: &[&str] = &["initialize", "tools/list", "ping"];

/// Writes synthetic PolicyLayer lines.
pub struct Generator {
    opts: GenOptions,
    rng: SplitMix64,
    now: i64,
    seq: u64,
    total_weight: u64,
    sessions: Vec<u64>,
}

impl Generator {
    /// A generator from options.
    pub fn new(opts: GenOptions) -> Self {
        let rng = SplitMix64::new(opts.seed);
        let sessions = (0..opts.identities.max(1))
            .map(|i| i as u64 * 1_000_003)
            .collect();
        Self {
            now: opts.start_micros,
            total_weight: TOOLS.iter().map(|t| t.weight).sum(),
            opts,
            rng,
            seq: 0,
            sessions,
        }
    }

    fn pick_tool(&mut self) -> &'static Tool {
        let mut x = self.rng.below(self.total_weight);
        for t in TOOLS {
            if x < t.weight {
                return t;
            }
            x -= t.weight;
        }
        &TOOLS[0]
    }

    /// Writes `n` lines, each ending in `\n`.
    ///
    /// # Errors
    /// When the writer fails.
    pub fn write_lines(&mut self, n: u64, w: &mut impl Write) -> io::Result<()> {
        let mut line = String::with_capacity(512);
        for _ in 0..n {
            line.clear();
            self.next_line(&mut line);
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    /// Appends one line (without `\n`) to `out`.
    pub fn next_line(&mut self, out: &mut String) {
        use std::fmt::Write as _;
        let r = &mut self.rng;
        // Exponential-ish gaps: bursts and lulls.
        let gap = (self.opts.mean_gap_micros as u64 * (r.below(2000) + 1) / 1000) as i64;
        self.now += gap;
        let mut ts = self.now;
        // A few percent of lines arrive slightly out of order, as from a multi-threaded proxy.
        if r.permille(30) {
            ts -= r.below(400_000) as i64;
        }
        self.seq += 1;
        let ident = r.below(self.opts.identities as u64) as usize;
        if r.permille(5) {
            self.sessions[ident] += 1;
        }
        let session = self.sessions[ident];
        let non_tool = r.permille(120);
        let tool = self.pick_tool();
        let r = &mut self.rng;
        let (decision, rule, message): (&str, String, &str) = if non_tool {
            ("allow", String::new(), "")
        } else if tool.name == "session_destroy" {
            (
                "deny",
                "(hidden)".into(),
                "Tool \\\"session_destroy\\\" is hidden by policy",
            )
        } else if tool.name == "export_all" {
            (
                "deny",
                "(default deny)".into(),
                "Tool \\\"export_all\\\" is not allowed by policy",
            )
        } else {
            match r.below(1000) {
                0..=879 => ("allow", String::new(), ""),
                880..=929 => (
                    "deny",
                    "/all_tools/limits/calls-per-minute".into(),
                    "Rate limit exceeded: calls-per-minute (20 per minute per grant)",
                ),
                930..=949 if tool.name.starts_with("session_create") => (
                    "deny",
                    format!("/tools/{}/limits/session_create_rate", tool.name),
                    "Rate limit exceeded: session_create_rate",
                ),
                930..=969 if tool.name == "create_charge" => (
                    "deny",
                    "/tools/create_charge/deny_if/args.amount-gt".into(),
                    "Charges over 10000 need finance sign-off.",
                ),
                930..=979 if tool.name == "create_refund" || tool.name == "delete_session" => (
                    "approval_required",
                    format!("/tools/{}/approval", tool.name),
                    "Waiting for human approval",
                ),
                990..=994 => (
                    "error",
                    "(engine error)".into(),
                    "policy engine unavailable",
                ),
                _ => ("allow", String::new(), ""),
            }
        };
        let allowed = decision == "allow";
        let status = if allowed {
            if r.permille(15) {
                502
            } else {
                200
            }
        } else {
            0
        };
        let latency = if allowed {
            5.0 + r.below(40_000) as f64 / 100.0
        } else {
            0.0
        };
        let _ = write!(
            out,
            r#"{{"timestamp":"{}","request_id":"req_{:016x}{:06}","grant_id":"gr_{:04x}","grant_label":"agent-{:03}","server":"{}","method":"{}","tool":"#,
            format_micros(ts).replace(".000000Z", ".000Z"),
            self.opts.seed,
            self.seq,
            ident * 7919 % 65536,
            ident,
            tool.server,
            if non_tool {
                METHODS[(self.seq % 3) as usize]
            } else {
                "tools/call"
            },
        );
        if non_tool {
            out.push_str(r#"null,"arg_keys":[],"#);
        } else {
            let _ = write!(out, r#""{}","arg_keys":["#, tool.name);
            for (i, k) in tool.keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "\"{k}\"");
            }
            out.push_str("],");
            if r.permille(self.opts.args_permille) && !tool.keys.is_empty() {
                out.push_str(r#""args":{"#);
                for (i, k) in tool.keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    match *k {
                        "amount" | "count" => {
                            let _ = write!(out, "\"{k}\":{}", r.below(20_000));
                        }
                        "full_page" => {
                            let _ = write!(out, "\"{k}\":{}", r.permille(300));
                        }
                        _ => {
                            let _ = write!(out, "\"{k}\":\"v{}\"", r.below(10_000));
                        }
                    }
                }
                out.push_str("},");
            }
        }
        let _ = write!(
            out,
            r#""policy":"{}-prod","policy_version":"12","decision":"{decision}","rule":"{rule}","message":{},"upstream_status":{},"latency_ms":{},"session_id":"mcp_s_{:08x}"}}"#,
            tool.server,
            if message.is_empty() {
                "null".to_string()
            } else {
                format!("\"{message}\"")
            },
            if status == 0 {
                "null".to_string()
            } else {
                status.to_string()
            },
            if allowed {
                format!("{latency:.2}")
            } else {
                "null".to_string()
            },
            session,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(seed: u64, n: u64) -> String {
        let mut out = Vec::new();
        Generator::new(GenOptions {
            seed,
            ..GenOptions::default()
        })
        .write_lines(n, &mut out)
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        assert_eq!(lines(3, 200), lines(3, 200));
        assert_ne!(lines(3, 200), lines(4, 200));
    }

    #[test]
    fn every_line_decodes_and_the_mix_is_realistic() {
        let text = lines(11, 5000);
        let mut records = Vec::new();
        for l in text.lines() {
            verdict_formats::Format::PolicyLayer
                .decode(l, &mut records)
                .unwrap();
        }
        assert_eq!(records.len(), 5000);
        let count =
            |d: verdict_schema::Decision| records.iter().filter(|r| r.decision == d).count();
        use verdict_schema::Decision::*;
        assert!(count(Allow) > 4000);
        for d in [Deny, RateLimited, ApprovalRequired, Error] {
            assert!(count(d) > 0, "{d}");
        }
        let avg = text.len() / 5000;
        assert!(
            (300..500).contains(&avg),
            "about 400 bytes a line, got {avg}"
        );
    }
}
