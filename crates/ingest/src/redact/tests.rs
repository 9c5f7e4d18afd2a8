use super::*;

fn r() -> Redactor {
    Redactor::new(&RedactionRules::default(), b"test-key").unwrap()
}

#[test]
fn secret_keys_at_any_depth_are_replaced_and_listed() {
    let red = r();
    let text = r#"{"tool":"x","arguments":{"proxy":{"password":"hunter2","host":"h"},"api_key":"k-123","list":[{"Client_Secret":"s"}]}}"#;
    let mut paths = Vec::new();
    let out = red.redact_json(text, "raw", &mut paths).unwrap().unwrap();
    let m = |s: &str| red.marker(s.as_bytes());
    assert_eq!(
        out,
        format!(
            r#"{{"tool":"x","arguments":{{"proxy":{{"password":"{}","host":"h"}},"api_key":"{}","list":[{{"Client_Secret":"{}"}}]}}}}"#,
            m("hunter2"),
            m("k-123"),
            m("s")
        )
    );
    assert_eq!(
        paths,
        [
            "raw.arguments.proxy.password",
            "raw.arguments.api_key",
            "raw.arguments.list[0].Client_Secret"
        ]
    );
    assert!(!out.contains("hunter2"));
}

#[test]
fn secret_values_are_caught_under_any_key() {
    let red = r();
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    let cases = [
        format!("Bearer {jwt}"),
        jwt.to_string(),
        "AKIAIOSFODNN7EXAMPLE".to_string(),
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789".to_string(),
        "xoxb-1234567890-abcdefghij".to_string(),
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----".to_string(),
    ];
    for secret in cases {
        let text = serde_json::json!({"headers": {"x-note": secret}}).to_string();
        let mut paths = Vec::new();
        let out = red.redact_json(&text, "raw", &mut paths).unwrap();
        let out = out.unwrap_or_else(|| panic!("not redacted: {secret}"));
        assert!(!out.contains(&secret), "{out}");
        assert_eq!(paths, ["raw.headers.x-note"]);
    }
}

#[test]
fn equal_secrets_correlate_and_keys_differ() {
    let a = r();
    let b = Redactor::new(&RedactionRules::default(), b"other-key").unwrap();
    assert_eq!(a.marker(b"s3cret"), a.marker(b"s3cret"));
    assert_ne!(a.marker(b"s3cret"), a.marker(b"s3cret!"));
    assert_ne!(a.marker(b"s3cret"), b.marker(b"s3cret"));
    assert!(is_marker(&a.marker(b"x")));
    assert_eq!(a.marker(b"x").len(), "[redacted:]".len() + 16);
}

#[test]
fn clean_text_is_untouched_and_markers_are_not_redacted_again() {
    let red = r();
    let mut paths = Vec::new();
    let clean = r#"{"tool":"navigate","arguments":{"url":"https://example.com","max_tokens":5}}"#;
    assert_eq!(red.redact_json(clean, "raw", &mut paths), Ok(None));
    let once = red
        .redact_json(r#"{"token":"abc"}"#, "raw", &mut paths)
        .unwrap()
        .unwrap();
    let mut again = Vec::new();
    assert_eq!(red.redact_json(&once, "raw", &mut again), Ok(None));
    assert!(again.is_empty());
    assert_eq!(
        red.redact_json("{\"token\": bad", "raw", &mut paths),
        Err(())
    );
    // Text with nothing secret-looking is not even parsed.
    assert_eq!(red.redact_json("{bad", "raw", &mut paths), Ok(None));
}

#[test]
fn json_inside_strings_and_broken_text() {
    let red = r();
    let inner = r#"{"password":"pw1","a":1}"#;
    let line = serde_json::json!({"log": inner, "stream": "stdout"}).to_string();
    let mut paths = Vec::new();
    let out = red.redact_json(&line, "raw", &mut paths).unwrap().unwrap();
    assert!(!out.contains("pw1"), "{out}");
    assert_eq!(paths, ["raw.log.password"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let log: serde_json::Value = serde_json::from_str(v["log"].as_str().unwrap()).unwrap();
    assert_eq!(log["password"], red.marker(b"pw1"));
    // A truncated line: the pairs and the value patterns are still caught.
    let broken = r#"{"user":"a","password":"pw2","auth":"Bearer abcdefghijkl"#;
    let out = red.redact_text(broken).unwrap();
    assert!(
        !out.contains("pw2") && !out.contains("abcdefghijkl"),
        "{out}"
    );
    let cut = r#"{"user":"a","cookie":"sid=cut-here"#;
    let out = red.redact_text(cut).unwrap();
    assert!(
        !out.contains("cut-here") && out.contains(r#""user":"a""#),
        "{out}"
    );
}

#[test]
fn user_rules_and_turning_builtins_off() {
    let rules = RedactionRules {
        builtins: false,
        keys: vec!["(?i)ssn".into()],
        values: vec![r"\b\d{4}-\d{4}-\d{4}-\d{4}\b".into()],
        paths: vec!["args.proxy.*".into(), "raw.**.url".into()],
    };
    let red = Redactor::new(&rules, b"k").unwrap();
    let mut paths = Vec::new();
    let text = r#"{"password":"kept","SSN":"123","card":"1111-2222-3333-4444","proxy":{"host":"h"},"a":{"b":{"url":"u"}}}"#;
    let out = red.redact_json(text, "raw", &mut paths).unwrap().unwrap();
    assert!(out.contains("\"kept\""));
    assert_eq!(paths, ["raw.SSN", "raw.card", "raw.a.b.url"]);
    let mut paths = Vec::new();
    red.redact_json(r#"{"proxy":{"host":"h"}}"#, "args", &mut paths)
        .unwrap()
        .unwrap();
    assert_eq!(paths, ["args.proxy.host"]);
    let e = Redactor::new(
        &RedactionRules {
            values: vec!["(".into()],
            ..Default::default()
        },
        b"k",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("redaction rule `(`"), "{e}");
    let off = Redactor::new(
        &RedactionRules {
            builtins: false,
            ..Default::default()
        },
        b"k",
    )
    .unwrap();
    assert!(off.is_empty());
    assert_eq!(off.redact_json(text, "raw", &mut paths), Ok(None));
}

#[test]
fn both_prefilters_find_every_word_in_any_case_and_nothing_else() {
    let fast = Prefilter::new();
    let automaton = Prefilter::Automaton(
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(PREFILTER)
            .unwrap(),
    );
    for p in [&fast, &automaton] {
        for w in PREFILTER {
            let upper = format!("{{\"k\":\"x {} y\"}}", w.to_ascii_uppercase());
            let mixed: String = w
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            assert!(p.is_match(&upper), "{w} in {upper}");
            assert!(p.is_match(&mixed), "{w} as {mixed}");
            assert!(p.is_match(w), "{w}");
        }
        assert!(!p.is_match(r#"{"tool":"navigate","url":"https://example.com/a?b=c","n":1}"#));
        assert!(!p.is_match(""));
    }
}
