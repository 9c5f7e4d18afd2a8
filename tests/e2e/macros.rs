//! Small assertion macros shared by the end-to-end tests.

/// Asserts a command's exit code, printing its stdout and stderr when it differs.
macro_rules! assert_exit {
    ($out:expr, $code:expr) => {{
        let out = &$out;
        assert_eq!(
            out.code,
            Some($code),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            out.stdout,
            out.stderr
        );
    }};
}
