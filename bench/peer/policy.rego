# bench/policies/bench.json (verdict policy v1) translated by hand to Rego, WITHOUT its `limits`:
# rate limits need counter state across calls, which a stateless policy engine does not keep.
#
# Input, one per `tools/call`:
#   {"tool": "navigate", "arg_keys": ["url"], "args": {"url": "v123"}}
# `args` is left out when the log holds no argument values (about 90% of the generated lines).
#
# Output `decision`: {"outcome": "allow" | "deny" | "approval_required", "rule": <verdict's rule pointer>}.
# The steps run in the spec's order (hidden, default deny, require, deny_if, approval, allow) as an
# `else` chain, so the first that decides wins, as in verdict.
package verdict.bench

import rego.v1

# "hide"
hidden := {"session_destroy"}

# The tools listed under "tools"; "default": "deny" decides every other tool.
listed := {
	"navigate", "click", "type_text", "screenshot", "session_create", "session_create_batch",
	"session_list", "open_session", "send_message", "close_session", "list_sessions",
	"knowledge_search", "get_document", "create_session", "delete_session", "create_charge",
	"create_refund",
}

# "require", per tool, in array order (top-level keys after "args.").
requires := {
	"type_text": ["selector"],
	"session_create_batch": ["count"],
	"send_message": ["session_id"],
	"create_charge": ["reason"],
}

# "approval": true
approval := {"delete_session", "create_refund"}

# A top-level argument is present when the logged arguments hold it with a non-null value; when no
# values were logged, when `arg_keys` lists it (verdict's rule: values take precedence over keys).
present(k) if {
	input.args
	input.args[k] != null
}

present(k) if {
	not input.args
	k in input.arg_keys
}

# The required arguments that are missing, in `require` order.
missing := [k | some k in requires[input.tool]; not present(k)]

# "deny_if": one rule per tool here, so no two definitions can disagree. A condition on a value the
# log does not hold (no `args`) does not hold: verdict says `indeterminate` there instead.
#
# navigate: {"id": "no-internal-hosts", args.url regex "^v9"} (regex: strings only, unanchored)
denied := {"rule": "/tools/navigate/deny_if/no-internal-hosts", "message": "Internal hosts are off limits."} if {
	input.tool == "navigate"
	is_string(input.args.url)
	regex.match(`^v9`, input.args.url)
}

# screenshot: args.full_page eq true (JSON equality)
denied := {"rule": "/tools/screenshot/deny_if/args.full_page-eq", "message": "Full-page screenshots are disabled."} if {
	input.tool == "screenshot"
	input.args.full_page == true
}

# session_create_batch: args.count gt 10000 (numbers only: Rego orders a string above any number)
denied := {"rule": "/tools/session_create_batch/deny_if/args.count-gt", "message": "Batches over 10000 need sign-off."} if {
	input.tool == "session_create_batch"
	is_number(input.args.count)
	input.args.count > 10000
}

# send_message: args.text contains "v99" (substring of a string, or element of an array)
denied := {"rule": "/tools/send_message/deny_if/args.text-contains", "message": "Blocked phrase."} if {
	input.tool == "send_message"
	is_string(input.args.text)
	contains(input.args.text, "v99")
}

denied := {"rule": "/tools/send_message/deny_if/args.text-contains", "message": "Blocked phrase."} if {
	input.tool == "send_message"
	is_array(input.args.text)
	"v99" in input.args.text
}

# create_charge: args.amount gt 10000
denied := {"rule": "/tools/create_charge/deny_if/args.amount-gt", "message": "Charges over 10000 need finance sign-off."} if {
	input.tool == "create_charge"
	is_number(input.args.amount)
	input.args.amount > 10000
}

decision := {"outcome": "deny", "rule": "(hidden)"} if {
	input.tool in hidden
} else := {"outcome": "deny", "rule": "(default deny)"} if {
	not input.tool in listed
} else := {"outcome": "deny", "rule": concat("", ["/tools/", input.tool, "/require/args.", missing[0]])} if {
	count(missing) > 0
} else := {"outcome": "deny", "rule": denied.rule} if {
	denied
} else := {"outcome": "approval_required", "rule": concat("", ["/tools/", input.tool, "/approval"])} if {
	input.tool in approval
} else := {"outcome": "allow", "rule": ""}
