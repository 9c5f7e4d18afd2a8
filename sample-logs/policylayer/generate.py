#!/usr/bin/env python3
"""Generate the PolicyLayer sample logs of verdict and their oracle (expected.json).

Standard library only, deterministic (fixed seed, no wall clock):

    python3 sample-logs/policylayer/generate.py

What it does, in order:

1. Builds three UTC days (2026-11-02 .. 2026-11-04) of MCP gateway traffic for five identities
   (scripted scenarios plus seeded background sessions).
2. Simulates a PolicyLayer gateway enforcing ../policies/live.json on that traffic, with the counter
   semantics of README "Replay semantics and exit codes" (fixed UTC-aligned windows, scopes, shared counters, only
   allowed calls charged, quota rollback for upstream_status >= 500), events in (ts, request_id) order
   over all days together, counters empty at the first event. The gateway sees the full arguments.
3. Writes the logs (gateway-2026-11-02.jsonl, gateway-2026-11-03.jsonl, gateway-2026-11-04.jsonl.gz).
4. Reads the files back, parses them as a collector would (only what the lines hold: arg_keys always,
   args on about 10% of the lines) and replays live.json (fidelity self-check) and candidate.json over
   them with the spec's replay rules (indeterminate steps, charging of indeterminate calls,
   not_comparable for recorded errors).
5. Checks that alternative readings of points the spec leaves open give the same results on this data
   (so the oracle does not depend on them), and writes expected.json.
"""

import gzip
import io
import json
import os
import random
import re
import sys
from datetime import datetime, timedelta, timezone

SEED = 20261102
HERE = os.path.dirname(os.path.abspath(__file__))
POLICY_DIR = os.path.normpath(os.path.join(HERE, "..", "policies"))
LIVE_POLICY = os.path.join(POLICY_DIR, "live.json")
CANDIDATE_POLICY = os.path.join(POLICY_DIR, "candidate.json")

DAYS = ["2026-11-02", "2026-11-03", "2026-11-04"]
GZ_DAYS = {"2026-11-04"}
POLICY_VERSION = "12"

IDENTITIES = {
    "alice": ("alice-laptop", "gr_7f3a"),
    "bob": ("bob-ci", "gr_19c2"),
    "carol": ("carol-agent", "gr_b40e"),
    "ops": ("ops-bot", "gr_5d21"),
    "dave": ("dave-sandbox", None),  # a gateway token without a grant id
}

US = 1_000_000
WINDOW_US = {"second": US, "minute": 60 * US, "hour": 3600 * US, "day": 86400 * US}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------------
# time helpers
# --------------------------------------------------------------------------------------------------

def day_start_us(day):
    d = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    return (d - EPOCH) // timedelta(microseconds=1)


def at(day, hhmmss, frac=0.0):
    """UTC instant in microseconds for day 'YYYY-MM-DD', time 'HH:MM:SS' plus frac seconds."""
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return day_start_us(day) + (h * 3600 + m * 60 + s) * US + int(round(frac * US))


def utc_dt(ts_us):
    return EPOCH + timedelta(microseconds=ts_us)


def utc_day(ts_us):
    return utc_dt(ts_us).strftime("%Y-%m-%d")


FMT_PRECISION = {"ms_z": 1000, "us_z": 1, "s_z": US, "ms_p1": 1000}


def format_ts(ts_us, fmt):
    """RFC 3339 text for an instant already quantised to the format's precision."""
    assert ts_us % FMT_PRECISION[fmt] == 0, (ts_us, fmt)
    if fmt == "ms_p1":
        d = utc_dt(ts_us) + timedelta(hours=1)
        return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03d+01:00" % (d.microsecond // 1000)
    d = utc_dt(ts_us)
    base = d.strftime("%Y-%m-%dT%H:%M:%S")
    if fmt == "ms_z":
        return base + ".%03dZ" % (d.microsecond // 1000)
    if fmt == "us_z":
        return base + ".%06dZ" % d.microsecond
    return base + "Z"


RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_ts(text):
    """RFC 3339 (any offset, up to microsecond precision) -> UTC microseconds since the epoch."""
    m = RFC3339.match(text)
    if not m:
        raise ValueError("bad timestamp %r" % text)
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7)
    us = 0
    if frac:
        digits = frac[1:]
        assert len(digits) <= 6, "sub-microsecond timestamps are not generated"
        us = int(digits.ljust(6, "0"))
    off = m.group(8)
    off_s = 0
    if off not in ("Z", "z"):
        sign = 1 if off[0] == "+" else -1
        off_s = sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    local = datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc)
    return (local - EPOCH) // timedelta(microseconds=1) + us - off_s * US


# --------------------------------------------------------------------------------------------------
# policy loading / validation (policy v1, only the fields the spec defines)
# --------------------------------------------------------------------------------------------------

OPS = {"eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "regex", "contains", "exists"}
SCOPES = {"grant", "identity", "session", "server", "global"}


def validate_policy(p, name):
    def fail(path, why):
        raise SystemExit("%s: invalid policy at %s: %s" % (name, path, why))

    def only(obj, allowed, path):
        if not isinstance(obj, dict):
            fail(path, "expected an object")
        for k in obj:
            if k not in allowed:
                fail(path + "/" + k, "unknown field")

    counters = {}

    def limits(arr, path):
        if not isinstance(arr, list):
            fail(path, "expected an array")
        for i, lim in enumerate(arr):
            lp = "%s/%d" % (path, i)
            only(lim, {"counter", "window", "max", "scope", "sliding"}, lp)
            if not isinstance(lim.get("counter"), str):
                fail(lp + "/counter", "required string")
            if lim.get("window") not in WINDOW_US:
                fail(lp + "/window", "unknown window")
            mx = lim.get("max")
            if not isinstance(mx, int) or isinstance(mx, bool) or mx < 0:
                fail(lp + "/max", "non-negative integer required")
            if lim.get("scope", "grant") not in SCOPES:
                fail(lp + "/scope", "unknown scope")
            if lim.get("sliding", False):
                fail(lp + "/sliding", "sliding windows are not used by the sample policies")
            shape = (lim["window"], lim.get("scope", "grant"), bool(lim.get("sliding", False)))
            if counters.setdefault(lim["counter"], shape) != shape:
                fail(lp, "counter %r shared with a different window/scope/sliding" % lim["counter"])

    only(p, {"version", "default", "hide", "all_tools", "tools"}, "")
    if p.get("version") != "1":
        fail("/version", 'must be "1"')
    if p.get("default") not in ("allow", "deny"):
        fail("/default", "must be allow or deny")
    if not all(isinstance(t, str) for t in p.get("hide", [])):
        fail("/hide", "array of tool names")
    if "all_tools" in p:
        only(p["all_tools"], {"limits"}, "/all_tools")
        limits(p["all_tools"].get("limits", []), "/all_tools/limits")
    for tool, rule in p.get("tools", {}).items():
        tp = "/tools/" + tool
        only(rule, {"require", "deny_if", "limits", "approval"}, tp)
        for j, path in enumerate(rule.get("require", [])):
            if not (isinstance(path, str) and path.startswith("args.")):
                fail("%s/require/%d" % (tp, j), "path must start with args.")
            if "." in path[len("args."):]:
                fail("%s/require/%d" % (tp, j), "nested paths are not used by the sample policies")
        for j, dr in enumerate(rule.get("deny_if", [])):
            dp = "%s/deny_if/%d" % (tp, j)
            only(dr, {"conditions", "on_deny", "id"}, dp)
            for k, c in enumerate(dr.get("conditions", [])):
                cp = "%s/conditions/%d" % (dp, k)
                only(c, {"path", "op", "value"}, cp)
                if c.get("op") not in OPS:
                    fail(cp + "/op", "unknown op")
                if not c.get("path", "").startswith("args."):
                    fail(cp + "/path", "path must start with args.")
                if "." in c["path"][len("args."):]:
                    fail(cp + "/path", "nested paths are not used by the sample policies")
                if c["op"] == "regex":
                    re.compile(c["value"])
        limits(rule.get("limits", []), tp + "/limits")
        if "approval" in rule and not isinstance(rule["approval"], bool):
            fail(tp + "/approval", "bool required")
        # two applicable limits naming the same counter would make "charge every applicable
        # counter by one" ambiguous (once or twice?); the sample policies never do it.
        names = [l["counter"] for l in rule.get("limits", [])] + \
                [l["counter"] for l in p.get("all_tools", {}).get("limits", [])]
        if len(names) != len(set(names)):
            fail(tp + "/limits", "a tool's limits and all_tools.limits share a counter")
    return p


def load_policy(path):
    with open(path, encoding="utf-8") as f:
        return validate_policy(json.load(f), os.path.basename(path))


# --------------------------------------------------------------------------------------------------
# evaluation (policy-v1.md "Evaluation of one tools/call"), three-valued where values are unknown
# --------------------------------------------------------------------------------------------------

UNKNOWN = "UNKNOWN"  # truth value "cannot be decided from the log"
_MISSING = object()
_PRESENT = object()  # key present (from arg_keys) but its value is not logged


class View:
    """What the evaluator knows about a call's arguments.

    args is the full argument object (the live gateway, or a log line that carries `args`) or None
    (the log holds only the sorted top-level keys in arg_keys)."""

    def __init__(self, arg_keys, args):
        self.arg_keys = set(arg_keys or [])
        self.args = args

    def lookup(self, path):
        key = path[len("args."):]
        if self.args is not None:
            v = self.args.get(key, _MISSING)
            return _MISSING if v is None else v  # absent or null
        return _PRESENT if key in self.arg_keys else _MISSING


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def json_eq(a, b):
    if is_num(a) and is_num(b):
        return a == b  # 1 equals 1.0
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_eq(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    return a == b


def eval_condition(cond, view):
    op = cond["op"]
    want = cond.get("value", True)
    v = view.lookup(cond["path"])
    if v is _MISSING:
        if op == "exists":
            return want is False
        return False  # every other op (neq included) is false on a missing path
    if op == "exists":
        return want is not False
    if v is _PRESENT:
        return UNKNOWN  # the value is needed and not logged
    if op == "eq":
        return json_eq(v, want)
    if op == "neq":
        return not json_eq(v, want)
    if op == "in":
        return isinstance(want, list) and any(json_eq(v, w) for w in want)
    if op == "not_in":
        return isinstance(want, list) and not any(json_eq(v, w) for w in want)
    if op in ("lt", "lte", "gt", "gte"):
        if not (is_num(v) and is_num(want)):
            return False
        return {"lt": v < want, "lte": v <= want, "gt": v > want, "gte": v >= want}[op]
    if op == "regex":
        return isinstance(v, str) and re.search(want, v) is not None
    if op == "contains":
        if isinstance(v, str):
            return isinstance(want, str) and want in v
        if isinstance(v, list):
            return any(json_eq(x, want) for x in v)
        return False
    raise AssertionError(op)


def eval_rule_conditions(conds, view, mode):
    vals = [eval_condition(c, view) for c in conds]
    if mode == "kleene":  # a determinately false condition makes the AND false
        if any(v is False for v in vals):
            return False
        if any(v is UNKNOWN for v in vals):
            return UNKNOWN
        return True
    # "naive": any unknown condition makes the rule unknown
    if any(v is UNKNOWN for v in vals):
        return UNKNOWN
    return all(vals)


def deny_if_id(rule, index):
    if rule.get("id"):
        return rule["id"]
    if rule.get("conditions"):
        c = rule["conditions"][0]
        return "%s-%s" % (c["path"], c["op"])
    return str(index)


def scope_key(scope, call):
    ident = call["identity_id"] if call["identity_id"] is not None else call["identity"]
    if scope in ("grant", "identity"):
        return ident
    if scope == "session":
        return call["session"] if call["session"] is not None else ident
    if scope == "server":
        return call["server"]
    return ""


class Counters:
    """Fixed, UTC-aligned windows: bucket (counter, scope key) -> (window index, charged count)."""

    def __init__(self):
        self.b = {}

    def count(self, lim, key, ts):
        idx = ts // WINDOW_US[lim["window"]]
        w, n = self.b.get((lim["counter"], key), (None, 0))
        return n if w == idx else 0

    def charge(self, lim, key, ts):
        idx = ts // WINDOW_US[lim["window"]]
        w, n = self.b.get((lim["counter"], key), (None, 0))
        self.b[(lim["counter"], key)] = (idx, n + 1 if w == idx else 1)


def applicable_limits(policy, tool):
    out = []
    rule = policy.get("tools", {}).get(tool)
    if rule is not None:
        for lim in rule.get("limits", []):
            out.append(("/tools/%s/limits/%s" % (tool, lim["counter"]), lim))
    for lim in policy.get("all_tools", {}).get("limits", []):
        out.append(("/all_tools/limits/%s" % lim["counter"], lim))
    return out


def limit_message(lim):
    return "Rate limit exceeded: %s (max %d per %s, scope %s)" % (
        lim["counter"], lim["max"], lim["window"], lim.get("scope", "grant"))


def evaluate(policy, call, view, counters, and_mode="kleene", deny_if_mode="stop",
             require_mode="arg_keys"):
    """One tools/call -> (outcome, rule, message, applicable limits). outcome is allow, deny,
    rate_limited, approval_required or indeterminate. Does not charge."""
    tool = call["tool"]
    lims = applicable_limits(policy, tool)
    hide = policy.get("hide", [])
    if tool in hide or "*" in hide:
        return "deny", "(hidden)", 'Tool "%s" is hidden by policy' % tool, lims
    rule = policy.get("tools", {}).get(tool)
    if rule is None:
        if policy["default"] == "deny":
            return "deny", "(default deny)", 'Tool "%s" is not allowed by policy' % tool, lims
        rule = {}
    for path in rule.get("require", []):
        v = view.lookup(path)
        if v is _MISSING:
            return ("deny", "/tools/%s/require/%s" % (tool, path),
                    "Missing required argument %s" % path, lims)
        if v is _PRESENT and require_mode == "values":
            # other reading: a key listed in arg_keys might hold null, so without values the
            # requirement is undecidable. Not the reading used (the spec: presence of a top-level
            # key is known from arg_keys); only reported in expected.json.
            return "indeterminate", "/tools/%s/require/%s" % (tool, path), None, lims
        # present (from arg_keys, or a non-null logged value): the requirement holds
    pending_unknown = None
    for i, dr in enumerate(rule.get("deny_if", [])):
        r = eval_rule_conditions(dr.get("conditions", []), view, and_mode)
        if r is True:
            # in the "skip_unknown" variant a later determinate match decides even after an
            # undecidable rule; the spec's reading ("stop") never gets here with one pending
            return "deny", "/tools/%s/deny_if/%s" % (tool, deny_if_id(dr, i)), dr["on_deny"], lims
        if r is UNKNOWN:
            ptr = "/tools/%s/deny_if/%s" % (tool, deny_if_id(dr, i))
            if deny_if_mode == "stop":
                return "indeterminate", ptr, None, lims
            if pending_unknown is None:
                pending_unknown = ptr
    if pending_unknown is not None:
        return "indeterminate", pending_unknown, None, lims
    ts = call["ts"]
    for ptr, lim in lims:
        key = scope_key(lim.get("scope", "grant"), call)
        if counters.count(lim, key, ts) + 1 > lim["max"]:
            return "rate_limited", ptr, limit_message(lim), lims
    if rule.get("approval") is True:
        return ("approval_required", "/tools/%s/approval" % tool,
                'Call to "%s" requires human approval' % tool, lims)
    return "allow", "", None, lims


def charge_all(counters, lims, call):
    for _ptr, lim in lims:
        counters.charge(lim, scope_key(lim.get("scope", "grant"), call), call["ts"])


# --------------------------------------------------------------------------------------------------
# traffic
# --------------------------------------------------------------------------------------------------

SERVER_OF = {}
for _t in ["session_create", "session_create_batch", "session_destroy", "session_list", "navigate",
           "click", "screenshot", "type_text", "evaluate_js", "download_file"]:
    SERVER_OF[_t] = "leapfrog"
for _t in ["open_session", "close_session", "send_message", "list_sessions", "get_transcript",
           "purge_sessions"]:
    SERVER_OF[_t] = "mcacp"
for _t in ["knowledge_search", "create_session", "delete_session", "get_document",
           "list_knowledge_bases", "upload_document", "delete_knowledge_base", "export_knowledge_base"]:
    SERVER_OF[_t] = "weknora"
for _t in ["create_charge", "create_refund", "list_charges", "get_balance"]:
    SERVER_OF[_t] = "payments"

PUBLIC_URLS = [
    "https://example.com/", "https://news.ycombinator.com/", "https://github.com/login",
    "https://docs.python.org/3/library/json.html", "https://en.wikipedia.org/wiki/Parquet",
    "https://shop.example.org/cart", "https://status.example.net/", "https://www.rust-lang.org/",
    "https://app.example.io/dashboard", "https://app.example.io/settings/billing",
]
SELECTORS = ["#login", "button[type=submit]", "a.next", "#search", ".cart-add", "#accept-cookies",
             "nav > a:nth-child(2)", "input[name=q]"]
QUERIES = ["refund policy for annual plans", "how to rotate api keys", "gateway timeout runbook",
           "pricing tiers 2026", "oncall escalation matrix", "parquet schema evolution",
           "mcp session lifecycle", "sso setup okta", "data retention policy"]


class Traffic:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.events = []
        self.session_ids = set()

    # ids ----------------------------------------------------------------------------------------
    def new_session_id(self):
        while True:
            sid = "mcp_s_" + "".join(self.rng.choice("abcdefghijkmnpqrstuvwxyz23456789")
                                     for _ in range(6))
            if sid not in self.session_ids:
                self.session_ids.add(sid)
                return sid

    def browser_id(self):
        return "bs_" + "".join(self.rng.choice("0123456789abcdef") for _ in range(8))

    # events -------------------------------------------------------------------------------------
    def add(self, ts, who, session, server, method, tool=None, args=None, **plan):
        ev = {
            "ts_raw": ts, "who": who, "session": session, "server": server, "method": method,
            "tool": tool, "args": args,
            "upstream": plan.get("upstream"),      # forced upstream status if forwarded
            "error": plan.get("error", False),     # the proxy fails closed on this call
            "log_args": plan.get("log_args"),      # None: decided at random later
            "fmt": plan.get("fmt"),                # None: decided at random later
            "tag": plan.get("tag"),
        }
        self.events.append(ev)
        return ev

    def session(self, who, server, start, sid=None):
        return Session(self, who, server, start, sid or self.new_session_id())

    # argument makers ----------------------------------------------------------------------------
    def args_for(self, tool, s, **over):
        r = self.rng
        if tool == "session_create":
            a = {"headless": s.who == "bob" or r.random() < 0.5,
                 "viewport": {"width": r.choice([1280, 1440, 1920]), "height": r.choice([800, 900, 1080])}}
            if s.who == "bob":
                a["shard"] = r.randint(1, 8)
        elif tool == "session_create_batch":
            a = {"count": r.randint(2, 4), "headless": True}
        elif tool in ("session_destroy", "close_session", "get_transcript", "delete_session"):
            a = {"session_id": s.browser if tool == "session_destroy" else s.remote}
        elif tool == "session_list":
            a = {}
        elif tool == "navigate":
            a = {"session_id": s.browser, "url": r.choice(PUBLIC_URLS)}
            if r.random() < 0.3:
                a["wait_until"] = r.choice(["load", "networkidle"])
        elif tool == "click":
            a = {"session_id": s.browser, "selector": r.choice(SELECTORS)}
        elif tool == "type_text":
            a = {"session_id": s.browser, "selector": "input[name=q]", "text": r.choice(QUERIES)}
        elif tool == "screenshot":
            a = {"session_id": s.browser, "format": r.choice(["png", "jpeg"])}
        elif tool == "evaluate_js":
            a = {"session_id": s.browser, "script": "document.cookie"}
        elif tool == "download_file":
            a = {"session_id": s.browser, "url": "https://files.example.com/export.csv",
                 "save_as": "export.csv"}
        elif tool == "open_session":
            a = {"agent": r.choice(["claude-code", "codex", "gemini-cli"]),
                 "cwd": r.choice(["/srv/app", "/home/agent/repo", "/tmp/work"])}
        elif tool == "send_message":
            a = {"session_id": s.remote, "text": r.choice(["run the tests", "summarise the diff",
                                                          "status?", "apply the patch", "continue"])}
        elif tool == "list_sessions":
            a = {} if r.random() < 0.6 else {"status": "active"}
        elif tool == "purge_sessions":
            a = {"older_than_days": 7}
        elif tool == "knowledge_search":
            a = {"knowledge_base_id": s.kb, "query": r.choice(QUERIES), "top_k": r.choice([5, 10])}
        elif tool == "create_session":
            a = {"knowledge_base_id": s.kb}
        elif tool == "get_document":
            a = {"document_id": "doc_%04d" % r.randint(1, 9999)}
        elif tool == "list_knowledge_bases":
            a = {}
        elif tool == "upload_document":
            a = {"knowledge_base_id": s.kb, "filename": "notes-%d.md" % r.randint(1, 99),
                 "content_type": "text/markdown"}
        elif tool in ("delete_knowledge_base", "export_knowledge_base"):
            a = {"knowledge_base_id": s.kb}
        elif tool == "create_charge":
            a = {"amount": r.choice([1200, 2500, 4900, 990, 7500, 3000, 150, 8800]),
                 "currency": "EUR", "customer_id": "cus_%05d" % r.randint(1, 99999),
                 "reason": r.choice(["subscription renewal", "usage overage", "seat upgrade",
                                     "invoice 2026-10"])}
        elif tool == "create_refund":
            a = {"charge_id": "ch_%06d" % r.randint(1, 999999), "amount": r.choice([500, 1200, 2500]),
                 "reason": r.choice(["duplicate charge", "customer request", "service outage"])}
        elif tool == "list_charges":
            a = {"customer_id": "cus_%05d" % r.randint(1, 99999), "limit": 20}
        elif tool == "get_balance":
            a = {}
        else:
            raise AssertionError(tool)
        for k, v in over.items():
            if v is DROP:
                a.pop(k, None)
            else:
                a[k] = v
        return a


DROP = object()


class Session:
    def __init__(self, tr, who, server, start, sid):
        self.tr, self.who, self.server, self.t, self.sid = tr, who, server, start, sid
        self.browser = tr.browser_id()
        self.remote = "as_" + "".join(tr.rng.choice("0123456789abcdef") for _ in range(6))
        self.kb = "kb_" + tr.rng.choice(["handbook", "runbooks", "product", "legal"])

    def wait(self, lo, hi=None):
        sec = lo if hi is None else self.tr.rng.uniform(lo, hi)
        self.t += int(sec * US)
        return self

    def set(self, ts):
        self.t = ts
        return self

    def method(self, m, gap=(0.1, 1.2), **plan):
        self.wait(*gap)
        return self.tr.add(self.t, self.who, self.sid, self.server, m, **plan)

    def open(self):
        self.tr.add(self.t, self.who, self.sid, self.server, "initialize")
        self.method("tools/list", gap=(0.05, 0.6))
        return self

    def call(self, tool, gap=(2.0, 15.0), args=None, **plan):
        self.wait(*gap) if gap is not None else None
        over = plan.pop("over", {})
        a = args if args is not None else self.tr.args_for(tool, self, **over)
        return self.tr.add(self.t, self.who, self.sid, SERVER_OF[tool], "tools/call", tool, a, **plan)


def pick(rng, weights):
    r = rng.random() * sum(w for _, w in weights)
    for item, w in weights:
        r -= w
        if r < 0:
            return item
    return weights[-1][0]


def background_leapfrog(tr, who, start, n, destroy_p=0.0, fulls=0.04, extra_bad=0.04):
    s = tr.session(who, "leapfrog", start).open()
    s.call("session_create", gap=(0.5, 2))
    if tr.rng.random() < 0.3:
        s.call("session_list", gap=(0.5, 3))
    for _ in range(n):
        tool = pick(tr.rng, [("navigate", 34), ("click", 30), ("screenshot", 14), ("type_text", 10),
                             ("session_list", 4), ("evaluate_js", extra_bad * 60),
                             ("download_file", extra_bad * 40)])
        over = {}
        if tool == "screenshot" and tr.rng.random() < fulls:
            over["full_page"] = True
        s.call(tool, gap=(1.5, 14.0), over=over)
        if tr.rng.random() < 0.06:
            s.method("ping", gap=(1, 5))
    if tr.rng.random() < destroy_p:
        s.call("session_destroy", gap=(1, 4))
    return s


def background_mcacp(tr, who, start, n, broadcast_p=0.0, missing_p=0.0, close_p=0.8):
    s = tr.session(who, "mcacp", start).open()
    s.call("open_session", gap=(0.3, 1.5))
    for _ in range(n):
        tool = pick(tr.rng, [("send_message", 55), ("list_sessions", 15), ("get_transcript", 15),
                             ("purge_sessions", 1.5)])
        over = {}
        if tool == "send_message":
            if tr.rng.random() < broadcast_p:
                over["broadcast"] = True
            elif tr.rng.random() < missing_p:
                over["session_id"] = DROP
        s.call(tool, gap=(3, 40), over=over)
        if tr.rng.random() < 0.05:
            s.method("ping", gap=(5, 20))
    if tr.rng.random() < close_p:
        s.call("close_session", gap=(2, 20))
    return s


def background_weknora(tr, who, start, n, upload_p=0.02, delete_p=0.0):
    s = tr.session(who, "weknora", start).open()
    s.call("create_session", gap=(0.3, 1.5))
    if tr.rng.random() < 0.4:
        s.call("list_knowledge_bases", gap=(0.5, 3))
    for _ in range(n):
        tool = pick(tr.rng, [("knowledge_search", 52), ("get_document", 36),
                             ("list_knowledge_bases", 4), ("upload_document", upload_p * 100)])
        s.call(tool, gap=(2.5, 20))
    if tr.rng.random() < delete_p:
        s.call("delete_session", gap=(2, 10))
    return s


def background_payments(tr, who, start, n, refund_p=0.1):
    s = tr.session(who, "payments", start).open()
    s.call("get_balance", gap=(0.3, 1.5))
    for _ in range(n):
        tool = pick(tr.rng, [("create_charge", 55), ("list_charges", 25), ("get_balance", 10),
                             ("create_refund", refund_p * 100)])
        s.call(tool, gap=(4, 60))
    return s


def build_traffic():
    tr = Traffic(SEED)
    rng = tr.rng
    D1, D2, D3 = DAYS

    # ---------------------------------------------------------------- 2026-11-02
    # bob-ci nightly CI run
    background_leapfrog(tr, "bob", at(D1, "02:00:04", 0.112), 14, destroy_p=1.0)
    # carol-agent: overnight mcacp work
    background_mcacp(tr, "carol", at(D1, "01:20:31", 0.5), 9)
    # ops-bot payments run: charges, one without a reason, one big one with values logged
    s = background_payments(tr, "ops", at(D1, "07:00:02", 0.25), 6)
    s.call("create_charge", over={"reason": DROP})
    s.call("create_charge", over={"amount": 25000}, log_args=True)
    s.call("create_refund", over={"reason": "duplicate charge"})
    s.call("list_charges")
    # alice-laptop: morning browsing with a few policy hits
    s = background_leapfrog(tr, "alice", at(D1, "08:31:12", 0.04), 10)
    s.call("evaluate_js")
    s.call("screenshot", over={"full_page": True})
    s.call("click")
    s.call("session_destroy", gap=(3, 6))
    background_mcacp(tr, "carol", at(D1, "09:05:10", 0.7), 10, broadcast_p=0.15)
    background_mcacp(tr, "ops", at(D1, "09:30:44", 0.3), 5)
    # S1: bob-ci session_create burst across a minute boundary, one upstream 503 (rolled back)
    s = tr.session("bob", "leapfrog", at(D1, "10:14:50", 0.210)).open()
    ok = dict(upstream=200, fmt="ms_z")
    s.set(at(D1, "10:14:57", 0.104)); s.call("session_create", gap=None, **ok)
    s.set(at(D1, "10:14:58", 0.377)); s.call("session_create", gap=None, over={"profile": "ci-cache"}, **ok)
    s.set(at(D1, "10:14:59", 0.213)); s.call("session_create", gap=None, upstream=200, fmt="us_z")
    s.set(at(D1, "10:15:00", 0.402)); s.call("session_create", gap=None, **ok)
    s.set(at(D1, "10:15:01", 0.118)); s.call("session_create", gap=None, upstream=503, fmt="ms_z")
    s.set(at(D1, "10:15:02", 0.660)); s.call("session_create", gap=None, **ok)
    # the next two are written to the file in swapped order (267 ms apart): the first is the
    # last one allowed in this minute, the second the first one rate-limited
    s.set(at(D1, "10:15:03", 0.051)); s.call("session_create", gap=None, over={"profile": "ci-cache"}, tag="swap_a", **ok)
    s.set(at(D1, "10:15:03", 0.318)); s.call("session_create", gap=None, tag="swap_b", **ok)
    s.set(at(D1, "10:15:04", 0.930)); s.call("session_create", gap=None, upstream=200, fmt="us_z")
    s.set(at(D1, "10:15:05", 0.012)); s.call("session_create", gap=None, over={"profile": "ci-cache"}, **ok)
    s.set(at(D1, "10:15:20", 0.500)); s.call("session_create_batch", gap=None, **ok)
    s.set(at(D1, "10:16:05", 0.250)); s.call("session_create_batch", gap=None, over={"count": 3}, **ok)
    s.set(at(D1, "10:16:06", 0.800)); s.call("session_create", gap=None, **ok)
    s.set(at(D1, "10:16:08", 0.090)); s.call("session_create_batch", gap=None, **ok)
    s.call("session_create_batch", over={"count": DROP}, gap=(20, 30))
    s.call("session_list", gap=(2, 5))
    for _ in range(6):
        s.call(rng.choice(["navigate", "click", "screenshot"]), gap=(2, 8))
    s.call("session_destroy", gap=(2, 5))
    # alice: localhost development (values logged by the debug gateway)
    s = background_leapfrog(tr, "alice", at(D1, "10:40:03", 0.3), 6)
    s.call("navigate", args={"session_id": s.browser, "url": "http://localhost:3000/login"}, log_args=True)
    s.call("click", args={"session_id": s.browser, "selector": "#login"}, log_args=True)
    s.call("navigate", args={"session_id": s.browser, "url": "https://github.com/login"}, log_args=True)
    background_weknora(tr, "alice", at(D1, "11:30:15", 0.9), 8)
    # S5: carol-agent knowledge_search burst (session limit 6/min) and an upload burst
    s = tr.session("carol", "weknora", at(D1, "12:00:07", 0.33)).open()
    s.call("create_session", gap=(0.3, 1))
    s.set(at(D1, "12:01:02", 0.150))
    for _ in range(8):
        s.call("knowledge_search", gap=(3.5, 6.5), fmt="ms_z")
    s.set(at(D1, "12:03:10", 0.5))
    for _ in range(4):
        s.call("upload_document", gap=(4, 9), fmt="ms_z")
    s.call("delete_knowledge_base", gap=(5, 10))
    s.call("get_document")
    s.call("get_document")
    # alice afternoon, with one fail-closed engine error
    s = background_leapfrog(tr, "alice", at(D1, "13:20:41", 0.5), 8)
    s.call("click", error=True)
    s.call("screenshot")
    # S2: bob-ci all-tools burst (calls-per-minute 20 per grant) across a minute boundary
    s = tr.session("bob", "leapfrog", at(D1, "14:04:40", 0.0)).open()
    s.call("session_create", gap=(1, 3))  # 14:04:4x
    s.set(at(D1, "14:05:13", 0.0))
    burst = ["navigate"] * 8 + ["click"] * 10 + ["screenshot"] * 7
    rng.shuffle(burst)
    for i, tool in enumerate(burst):
        plan = {"fmt": "ms_z", "upstream": 200}
        if i == 9:
            plan["upstream"] = 502
        s.call(tool, gap=(1.2, 1.75), **plan)
    s.set(at(D1, "14:06:00", 0.640))
    for tool in ["navigate", "click", "click", "screenshot", "navigate", "click", "type_text", "click"]:
        s.call(tool, gap=(0.9, 1.8), fmt="ms_z", upstream=200)
    s.call("session_list", gap=(3, 6))
    s.call("session_destroy", gap=(2, 5))
    background_leapfrog(tr, "alice", at(D1, "15:50:09", 0.25), 9)
    background_mcacp(tr, "carol", at(D1, "16:10:51", 0.1), 8, missing_p=0.2)
    # dave-sandbox (no grant id): weknora, asks to delete its session (approval)
    s = background_weknora(tr, "dave", at(D1, "17:20:22", 0.6), 7)
    s.call("export_knowledge_base")
    s.call("delete_session")
    # bob-ci evening run on the EU runner (+01:00 timestamps past local midnight)
    s = background_leapfrog(tr, "bob", at(D1, "23:38:12", 0.4), 8, destroy_p=0.0)
    for ev in tr.events:
        if ev["session"] == s.sid:
            ev["fmt"] = "ms_p1"

    # ---------------------------------------------------------------- 2026-11-03
    background_leapfrog(tr, "bob", at(D2, "02:30:33", 0.1), 12, destroy_p=1.0)
    # S3: the 03:12 incident -- carol-agent destroys a browser session in the middle of the night
    s = tr.session("carol", "leapfrog", at(D2, "03:10:38", 0.512)).open()
    s.call("session_list", gap=(1, 2))
    s.call("session_create", gap=(2, 4))
    s.call("navigate", args={"session_id": s.browser, "url": "http://10.0.4.17/admin"})
    s.call("screenshot", gap=(10, 20))
    s.set(at(D2, "03:12:05", 0.201))
    s.call("session_list", gap=None, fmt="ms_z")
    s.set(at(D2, "03:12:07", 0.904))
    s.call("session_destroy", gap=None, args={"session_id": "bs_3e91c07a"}, fmt="ms_z", tag="incident")
    s.set(at(D2, "03:12:21", 0.330))
    s.call("session_list", gap=None, fmt="ms_z")
    s.call("navigate", args={"session_id": s.browser, "url": "http://10.0.4.17/admin/users"},
           gap=(8, 15))
    s.call("session_create", gap=(10, 20))
    s.call("navigate", gap=(3, 6))
    background_payments(tr, "ops", at(D2, "08:00:05", 0.9), 6)
    s = tr.session("ops", "payments", at(D2, "08:20:10", 0.2)).open()
    s.call("create_refund")
    s.call("create_refund", over={"reason": DROP})
    s.call("list_charges", error=True)
    s.call("create_charge", over={"amount": 12500}, log_args=True)
    s.call("create_charge", over={"amount": 640}, log_args=True)
    s.call("create_charge", over={"amount": 40000})
    s = background_leapfrog(tr, "alice", at(D2, "09:10:27", 0.8), 9)
    s.call("navigate", args={"session_id": s.browser, "url": "http://127.0.0.1:8080/"}, log_args=True)
    s.call("screenshot", args={"session_id": s.browser, "format": "png", "full_page": True}, log_args=True)
    s = background_leapfrog(tr, "bob", at(D2, "10:00:02", 0.7), 5)
    s.set(at(D2, "10:03:40", 0.0))
    for prof in [None, "ci-cache", None, None, None, "ci-cache"]:
        s.call("session_create", gap=(0.4, 1.2), over={"profile": prof} if prof else {}, fmt="ms_z",
               upstream=200)
    s.call("session_destroy", gap=(3, 6))
    background_weknora(tr, "alice", at(D2, "10:15:48", 0.05), 9)
    # S4: mcacp open_session, server-scoped hourly limit (8 per hour for the whole server)
    s1 = tr.session("carol", "mcacp", at(D2, "11:02:11", 0.3)).open()
    s2 = tr.session("ops", "mcacp", at(D2, "11:04:40", 0.6)).open()
    for i in range(6):
        s1.call("open_session", gap=(180, 300))
        s1.call("send_message", gap=(5, 30))
        s2.call("open_session", gap=(200, 330))
        s2.call("list_sessions", gap=(3, 20))
    s1.call("list_sessions", error=True)
    s1.call("close_session")
    s2.call("close_session")
    s2.call("send_message", over={"broadcast": True})
    s = background_weknora(tr, "carol", at(D2, "14:00:19", 0.4), 10)
    s.call("delete_session")
    s.call("delete_knowledge_base")
    background_leapfrog(tr, "alice", at(D2, "14:30:01", 0.0), 11, fulls=0.1)
    background_leapfrog(tr, "bob", at(D2, "15:00:45", 0.9), 13, destroy_p=1.0)
    s = background_weknora(tr, "dave", at(D2, "16:00:57", 0.2), 9)
    s.call("upload_document")
    s.call("upload_document", over={"knowledge_base_id": DROP})
    background_mcacp(tr, "carol", at(D2, "19:45:00", 0.8), 7, broadcast_p=0.1)

    # ---------------------------------------------------------------- 2026-11-04 (gzip)
    background_leapfrog(tr, "bob", at(D3, "02:00:03", 0.4), 10, destroy_p=1.0)
    # ops-bot payments day: more charges than charges-per-day (12 per grant per UTC day)
    s = tr.session("ops", "payments", at(D3, "08:00:09", 0.05)).open()
    s.call("get_balance")
    for i in range(8):
        s.call("create_charge", gap=(20, 90), upstream=503 if i == 3 else 200)
    s.call("create_refund", over={"reason": DROP})
    s.call("create_refund")
    s = background_leapfrog(tr, "alice", at(D3, "09:40:40", 0.6), 9)
    s.call("download_file")
    s.call("screenshot", over={"full_page": True})
    s.call("session_destroy")
    s = tr.session("carol", "weknora", at(D3, "11:30:02", 0.7)).open()
    s.call("create_session", gap=(0.3, 1))
    s.set(at(D3, "11:31:00", 0.888))
    for _ in range(7):
        s.call("knowledge_search", gap=(5, 8), fmt="ms_z")
    s.set(at(D3, "11:33:30", 0.1))
    for _ in range(3):
        s.call("upload_document", gap=(3, 8), fmt="ms_z")
    s.call("delete_session", gap=(10, 30))
    s = background_weknora(tr, "dave", at(D3, "12:10:33", 0.3), 8)
    s.call("get_document", error=True)
    s.call("delete_session")
    # bob-ci: second all-tools burst within one minute
    s = tr.session("bob", "leapfrog", at(D3, "13:00:20", 0.0)).open()
    s.call("session_create", gap=(1, 2))
    s.set(at(D3, "13:01:02", 0.0))
    burst = ["navigate"] * 6 + ["click"] * 9 + ["screenshot"] * 4 + ["type_text"] * 4
    rng.shuffle(burst)
    for tool in burst:
        s.call(tool, gap=(1.3, 2.0), fmt="ms_z", upstream=200)
    s.call("session_destroy", gap=(5, 9))
    s = tr.session("ops", "payments", at(D3, "15:00:44", 0.6)).open()
    for i in range(8):
        s.call("create_charge", gap=(15, 60), upstream=200)
    s.call("create_refund")
    s.call("list_charges")
    background_mcacp(tr, "carol", at(D3, "07:12:40", 0.5), 8, broadcast_p=0.1)
    background_weknora(tr, "alice", at(D3, "10:20:05", 0.35), 9)
    background_leapfrog(tr, "alice", at(D3, "14:10:51", 0.15), 10)
    background_mcacp(tr, "ops", at(D3, "16:30:12", 0.3), 5)
    background_mcacp(tr, "carol", at(D3, "17:05:08", 0.2), 6, missing_p=0.15)
    return tr


# --------------------------------------------------------------------------------------------------
# finalise events: timestamp formats, unique instants, request ids, args logging, upstream plan
# --------------------------------------------------------------------------------------------------

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def b32(n, width):
    out = []
    for _ in range(width):
        out.append(CROCKFORD[n % 32])
        n //= 32
    return "".join(reversed(out))


def finalise(tr):
    rng = random.Random(SEED + 1)
    evs = sorted(tr.events, key=lambda e: e["ts_raw"])
    used = set()
    ids = set()
    for e in evs:
        if e["fmt"] is None:
            e["fmt"] = pick(rng, [("ms_z", 75), ("ms_p1", 10), ("us_z", 8), ("s_z", 7)])
        if e["fmt"] == "us_z" and e["ts_raw"] % 1000 == 0:
            e["ts_raw"] += rng.randint(1, 999)
        prec = FMT_PRECISION[e["fmt"]]
        ts = e["ts_raw"] - e["ts_raw"] % prec
        while ts in used:
            ts += prec
        used.add(ts)
        e["ts"] = ts
        e["text_ts"] = format_ts(ts, e["fmt"])
        while True:
            rid = "req_" + b32(ts // 1000, 10) + b32(rng.getrandbits(30), 6)
            if rid not in ids:
                ids.add(rid)
                break
        e["request_id"] = rid
        if e["method"] == "tools/call":
            if e["log_args"] is None:
                e["log_args"] = rng.random() < 0.10
            if e["upstream"] is None:
                e["upstream"] = pick(rng, [(200, 96), (502, 2), (503, 2)])
        else:
            e["log_args"] = False
            e["upstream"] = 200
        base = {"navigate": 420, "screenshot": 260, "session_create": 900, "session_create_batch": 1800,
                "knowledge_search": 180, "create_charge": 340, "open_session": 1500,
                "upload_document": 650}.get(e["tool"], 60 if e["tool"] else 4)
        e["latency_plan"] = round(base * rng.uniform(0.5, 1.9) + rng.uniform(0.3, 3.0), 1)
        e["version_as_number"] = rng.random() < 0.1
        label, gid = IDENTITIES[e["who"]]
        e["identity"], e["identity_id"] = label, gid
        for v in (e["args"] or {}).values():
            assert v is not None, "null argument values are never generated"
    evs.sort(key=lambda e: (e["ts"], e["request_id"]))
    return evs


# --------------------------------------------------------------------------------------------------
# live gateway simulation
# --------------------------------------------------------------------------------------------------

ERROR_MESSAGE = "policy engine error: evaluation timed out after 250ms; request failed closed"


def simulate_live(policy, evs, rollback=True, sliding=False):
    """The gateway: full arguments known; returns {request_id: (decision, rule, message, upstream)}."""
    counters = SlidingCounters() if sliding else Counters()
    out = {}
    for e in evs:
        if e["method"] != "tools/call":
            out[e["request_id"]] = ("allow", "", None, 200)
            continue
        if e["error"]:
            out[e["request_id"]] = ("error", "(engine error)", ERROR_MESSAGE, None)
            continue
        call = {"ts": e["ts"], "tool": e["tool"], "identity": e["identity"],
                "identity_id": e["identity_id"], "session": e["session"], "server": e["server"]}
        outcome, rule, msg, lims = evaluate(policy, call, View(sorted(e["args"]), e["args"]), counters)
        assert outcome != "indeterminate"
        if outcome == "allow":
            up = e["upstream"]
            if not (rollback and up >= 500):
                charge_all(counters, lims, call)
            out[e["request_id"]] = ("allow", "", None, up)
        else:
            out[e["request_id"]] = (outcome, rule, msg, None)
    return out


class SlidingCounters(Counters):
    """Only used to show that the data tells fixed windows from sliding ones."""

    def count(self, lim, key, ts):
        w = WINDOW_US[lim["window"]]
        return sum(1 for t in self.b.get((lim["counter"], key), []) if ts - w < t <= ts)

    def charge(self, lim, key, ts):
        self.b.setdefault((lim["counter"], key), []).append(ts)


# --------------------------------------------------------------------------------------------------
# log lines
# --------------------------------------------------------------------------------------------------

def make_line(e, sim):
    decision, rule, message, upstream = sim[e["request_id"]]
    written = "deny" if decision == "rate_limited" else decision
    is_call = e["method"] == "tools/call"
    rec = {
        "timestamp": e["text_ts"],
        "request_id": e["request_id"],
        "grant_id": e["identity_id"],
        "grant_label": e["identity"],
        "server": e["server"],
        "method": e["method"],
        "tool": e["tool"] if is_call else None,
        "arg_keys": sorted(e["args"]) if is_call else [],
    }
    if is_call and e["log_args"]:
        rec["args"] = e["args"]
    rec.update({
        "policy": e["server"] + "-prod",
        "policy_version": int(POLICY_VERSION) if e["version_as_number"] else POLICY_VERSION,
        "decision": written,
        "rule": rule,
        "message": message,
        "upstream_status": upstream if decision == "allow" else None,
        "latency_ms": e["latency_plan"] if decision == "allow" else None,
        "session_id": e["session"],
    })
    return json.dumps(rec, separators=(",", ":"), ensure_ascii=False)


def pick_swaps(day_events, n, rng):
    """Indices i where lines i and i+1 are written swapped: close in time (40..600 ms)."""
    cands = [i for i in range(len(day_events) - 1)
             if 40_000 <= day_events[i + 1]["ts"] - day_events[i]["ts"] <= 600_000]
    chosen = []
    rng.shuffle(cands)
    for i in cands:
        if all(abs(i - j) > 2 for j in chosen):
            chosen.append(i)
        if len(chosen) == n:
            break
    return sorted(chosen)


def write_logs(evs, sim):
    rng = random.Random(SEED + 2)
    files = {}
    by_day = {d: [] for d in DAYS}
    for e in evs:
        by_day[utc_day(e["ts"])].append(e)
    swaps_per_day = {DAYS[0]: 2, DAYS[1]: 1, DAYS[2]: 1}
    swapped = []
    for day in DAYS:
        dev = list(by_day[day])
        forced = [i for i in range(len(dev) - 1)
                  if dev[i]["tag"] == "swap_a" and dev[i + 1]["tag"] == "swap_b"]
        tags = [e["tag"] for e in dev]
        assert ("swap_a" in tags) == bool(forced), "forced swap pair must be adjacent"
        randoms = [i for i in pick_swaps(dev, swaps_per_day[day], rng)
                   if all(abs(i - j) > 2 for j in forced)][:swaps_per_day[day] - len(forced)]
        for i in sorted(forced + randoms):
            dev[i], dev[i + 1] = dev[i + 1], dev[i]
            swapped.append([dev[i]["request_id"], dev[i + 1]["request_id"]])
        data = ("\n".join(make_line(e, sim) for e in dev) + "\n").encode("utf-8")
        name = "gateway-%s.jsonl" % day
        if day in GZ_DAYS:
            name += ".gz"
            buf = io.BytesIO()
            with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
                gz.write(data)
            data = buf.getvalue()
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        files[name] = len(dev)
    return files, swapped


# --------------------------------------------------------------------------------------------------
# collector-side: read the files back and replay
# --------------------------------------------------------------------------------------------------

def read_rows(files):
    rows = []
    for name in files:
        path = os.path.join(HERE, name)
        with open(path, "rb") as f:
            data = f.read()
        if name.endswith(".gz"):
            data = gzip.decompress(data)
        for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
            rec = json.loads(line)
            decision = rec["decision"]
            rule = rec["rule"]
            if decision == "deny" and isinstance(rule, str) and (
                    rule.startswith("/all_tools/limits/") or re.match(r"^/tools/[^/]+/limits/", rule)):
                decision = "rate_limited"
            rows.append({
                "file": name, "line": lineno, "raw": rec,
                "ts": parse_ts(rec["timestamp"]), "request_id": rec["request_id"],
                "identity": rec["grant_label"], "identity_id": rec["grant_id"],
                "session": rec["session_id"], "server": rec["server"], "method": rec["method"],
                "tool": rec["tool"], "arg_keys": rec["arg_keys"], "args": rec.get("args"),
                "decision": decision, "rule": rule or "", "message": rec["message"],
                "upstream_status": rec["upstream_status"],
            })
    rows.sort(key=lambda r: (r["ts"], r["request_id"]))
    return rows


def replay(policy, rows, and_mode="kleene", deny_if_mode="stop", error_rows_charge=False,
           indeterminate_rollback=True, require_mode="arg_keys"):
    """policy-v1.md "Replay": returns [(row, outcome, rule, message)] for tools/call rows."""
    counters = Counters()
    results = []
    for r in rows:
        if r["method"] != "tools/call":
            continue  # skipped, never compared
        call = {"ts": r["ts"], "tool": r["tool"], "identity": r["identity"],
                "identity_id": r["identity_id"], "session": r["session"], "server": r["server"]}
        view = View(r["arg_keys"], r["args"])
        outcome, rule, msg, lims = evaluate(policy, call, view, counters, and_mode, deny_if_mode,
                                            require_mode)
        up = r["upstream_status"]
        failed_upstream = up is not None and up >= 500
        if r["decision"] in ("error", "unknown"):
            # not_comparable; by default its evaluation charges nothing (the live proxy failed
            # closed, nothing was forwarded). The other reading is checked to give the same results.
            if error_rows_charge and outcome == "allow":
                charge_all(counters, lims, call)
        elif outcome == "allow":
            if not failed_upstream:
                charge_all(counters, lims, call)
        elif outcome == "indeterminate":
            if r["decision"] == "allow" and not (indeterminate_rollback and failed_upstream):
                charge_all(counters, lims, call)
        results.append((r, outcome, rule, msg))
    return results


def transition(recorded, candidate):
    if recorded in ("error", "unknown"):
        return "not_comparable"
    if candidate == "indeterminate":
        return "indeterminate"
    if recorded == candidate:
        return "unchanged"
    return "%s->%s" % (recorded, candidate)


def transitions_of(results):
    out = {}
    for r, outcome, _rule, _msg in results:
        out.setdefault(transition(r["decision"], outcome), []).append(r["request_id"])
    return out


def summary(results):
    return [(r["request_id"], o, ru) for r, o, ru, _m in results]


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

def main():
    live = load_policy(LIVE_POLICY)
    cand = load_policy(CANDIDATE_POLICY)

    tr = build_traffic()
    evs = finalise(tr)
    sim = simulate_live(live, evs)
    files, swapped = write_logs(evs, sim)

    rows = read_rows(files)
    assert len(rows) == len(evs)
    assert len({r["request_id"] for r in rows}) == len(rows), "request ids must be unique"
    assert len({r["ts"] for r in rows}) == len(rows), "instants are unique: no ts ties"
    for r in rows:
        assert r["arg_keys"] == sorted(r["arg_keys"])
        assert utc_day(r["ts"]) == r["file"][len("gateway-"):len("gateway-") + 10]

    # ---- live replay: the fidelity self-check
    live_res = replay(live, rows)
    determinate = reproduced = 0
    live_indet = []
    for r, outcome, rule, _msg in live_res:
        if r["decision"] in ("error", "unknown"):
            assert outcome != "indeterminate"
            continue
        if outcome == "indeterminate":
            live_indet.append(r["request_id"])
            continue
        determinate += 1
        if outcome == r["decision"]:
            reproduced += 1
            assert rule == r["rule"], (r["request_id"], rule, r["rule"])
        else:
            raise SystemExit("live replay does not reproduce %s: recorded %s %s, replay %s %s" % (
                r["request_id"], r["decision"], r["rule"], outcome, rule))
    assert determinate == reproduced

    # ---- candidate replay
    cand_res = replay(cand, rows)
    trans = transitions_of(cand_res)
    for r, outcome, _rule, _msg in cand_res:
        if r["decision"] in ("error", "unknown"):
            assert outcome != "indeterminate", "not_comparable vs indeterminate precedence matters"

    # ---- robustness: readings the spec leaves open must not change anything on this data
    variants = {
        "and_mode=naive": dict(and_mode="naive"),
        "deny_if_mode=skip_unknown": dict(deny_if_mode="skip_unknown"),
        "error_rows_charge=True": dict(error_rows_charge=True),
    }
    for name, kw in variants.items():
        for pol, base in ((live, live_res), (cand, cand_res)):
            alt = replay(pol, rows, **kw)
            if summary(alt) != summary(base):
                raise SystemExit("variant %s changes the replay outcome" % name)
    # indeterminate calls whose recorded allow failed upstream: charged or not? (brief: not charged)
    alt = replay(cand, rows, indeterminate_rollback=False)
    indet_rollback_matters = summary(alt) != summary(cand_res)
    # require judged from values only (null possible behind an arg_keys entry): how many calls change
    require_values_changes = {
        name: sum(1 for a, b in zip(summary(replay(pol, rows, require_mode="values")), summary(base))
                  if a != b)
        for name, pol, base in (("live", live, live_res), ("candidate", cand, cand_res))}

    # ---- the data must tell the semantics apart (otherwise it tests nothing)
    sim_no_rollback = simulate_live(live, evs, rollback=False)
    rollback_matters = sorted(k for k in sim if sim[k][0] != sim_no_rollback[k][0])
    assert rollback_matters, "quota rollback never matters"
    sim_sliding = simulate_live(live, evs, sliding=True)
    fixed_window_matters = sorted(k for k in sim if sim[k][0] != sim_sliding[k][0])
    assert fixed_window_matters, "fixed vs sliding windows never matters"
    file_order = []
    for name in files:
        file_order.extend(r for r in rows if r["file"] == name)
    file_order.sort(key=lambda r: (r["file"], r["line"]))
    def in_ts_order(res):
        return summary(sorted(res, key=lambda x: (x[0]["ts"], x[0]["request_id"])))
    file_order_matters = {
        "live": in_ts_order(replay(live, file_order)) != summary(live_res),
        "candidate": in_ts_order(replay(cand, file_order)) != summary(cand_res),
    }

    # ---- incident: the 03:12 session_destroy on 2026-11-03
    lo, hi = at(DAYS[1], "03:12:00"), at(DAYS[1], "03:13:00")
    inc = [r for r in rows if r["tool"] == "session_destroy" and lo <= r["ts"] < hi]
    assert len(inc) == 1
    inc = inc[0]
    same_session = [r for r in rows if r["session"] == inc["session"] and r["method"] == "tools/call"]
    before = [r for r in same_session if r["ts"] < inc["ts"]]
    after = [r for r in same_session if r["ts"] > inc["ts"]]
    assert before and after

    # ---- counts
    decisions_all, decisions_calls, rules = {}, {}, {}
    per_day, methods, by_identity = {}, {}, {}
    for r in rows:
        decisions_all[r["decision"]] = decisions_all.get(r["decision"], 0) + 1
        d = utc_day(r["ts"])
        per_day[d] = per_day.get(d, 0) + 1
        methods[r["method"]] = methods.get(r["method"], 0) + 1
        if r["method"] == "tools/call":
            decisions_calls[r["decision"]] = decisions_calls.get(r["decision"], 0) + 1
            if r["rule"]:
                rules[r["rule"]] = rules.get(r["rule"], 0) + 1
            bi = by_identity.setdefault(r["identity"], {})
            bi[r["decision"]] = bi.get(r["decision"], 0) + 1
    n_calls = methods.get("tools/call", 0)
    upstream_5xx = sorted(r["request_id"] for r in rows
                          if r["method"] == "tools/call" and (r["upstream_status"] or 0) >= 500)

    order = ["unchanged", "allow->deny", "deny->allow", "allow->rate_limited", "rate_limited->allow",
             "allow->approval_required", "approval_required->allow"]
    names = [n for n in order if n in trans]
    names += sorted(n for n in trans if n not in order and n not in ("indeterminate", "not_comparable"))
    names += [n for n in ("indeterminate", "not_comparable") if n in trans]
    for must in order[1:] + ["indeterminate", "not_comparable"]:
        assert len(trans.get(must, [])) >= 2, "transition %s appears fewer than twice" % must
    assert any(n not in order and "->" in n for n in trans), "no change between non-allow outcomes"

    first, last = rows[0]["ts"], rows[-1]["ts"]
    expected = {
        "format": "policylayer",
        "generator": "sample-logs/policylayer/generate.py",
        "seed": SEED,
        "files": files,
        "total_lines": len(rows),
        "rows_per_utc_day": dict(sorted(per_day.items())),
        "decisions": dict(sorted(decisions_all.items())),
        "decisions_tools_call": dict(sorted(decisions_calls.items())),
        "methods": dict(sorted(methods.items())),
        "tools_call": n_calls,
        "other_methods": len(rows) - n_calls,
        "recorded_rules_tools_call": dict(sorted(rules.items())),
        "decisions_by_identity": {k: dict(sorted(v.items())) for k, v in sorted(by_identity.items())},
        "identities": {label: gid for label, gid in sorted(IDENTITIES.values())},
        "upstream_5xx_allowed": upstream_5xx,
        "out_of_order_pairs": swapped,
        "replay_range": {"from": format_ts(first, "us_z"), "to": format_ts(last, "us_z"),
                         "counters_start_empty": True},
        "live_replay": {
            "policy": "sample-logs/policies/live.json",
            "tools_call": n_calls,
            "skipped_other_methods": len(rows) - n_calls,
            "not_comparable": len(trans.get("not_comparable", [])),
            "indeterminate": len(live_indet),
            "determinate": determinate,
            "reproduced": reproduced,
            "indeterminate_request_ids": live_indet,
        },
        "candidate_replay": {
            "policy": "sample-logs/policies/candidate.json",
            "tools_call": n_calls,
            "skipped_other_methods": len(rows) - n_calls,
            "transitions": {n: len(trans[n]) for n in names},
            "request_ids": {n: trans[n] for n in names},
        },
        "incident": {
            "request_id": inc["request_id"],
            "timestamp": inc["raw"]["timestamp"],
            "identity": inc["identity"],
            "identity_id": inc["identity_id"],
            "session": inc["session"],
            "server": inc["server"],
            "tool": inc["tool"],
            "decision": inc["decision"],
            "rule": inc["rule"],
            "calls_before_in_session": [r["request_id"] for r in before],
            "calls_after_in_session": [r["request_id"] for r in after],
        },
        "semantics_checks": {
            "request_ids_where_quota_rollback_changes_the_live_decision": rollback_matters,
            "request_ids_where_sliding_windows_would_change_the_live_decision": fixed_window_matters,
            "replay_in_file_order_instead_of_ts_order_differs": file_order_matters,
            "indeterminate_rollback_changes_candidate_replay": indet_rollback_matters,
            "calls_that_change_if_require_needed_values_not_arg_keys": require_values_changes,
            "alternative_readings_checked_without_effect": sorted(variants),
        },
    }
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=2, ensure_ascii=False)
        f.write("\n")

    print("lines per file:", files)
    print("rows per UTC day:", expected["rows_per_utc_day"])
    print("decisions:", expected["decisions"])
    print("tools/call:", n_calls, "other:", len(rows) - n_calls)
    print("live replay: determinate %d reproduced %d indeterminate %d" % (
        determinate, reproduced, len(live_indet)))
    print("candidate transitions:", expected["candidate_replay"]["transitions"])
    print("incident:", inc["request_id"], inc["identity"], inc["raw"]["timestamp"])
    print("rollback matters for:", rollback_matters)
    print("fixed window matters for:", len(fixed_window_matters), "calls")
    print("file order matters:", file_order_matters, "indeterminate rollback matters:",
          indet_rollback_matters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
