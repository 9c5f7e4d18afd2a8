//! Who may upload to the receiver: named bearer tokens (OPA's decision-log plugin sends
//! `Authorization: Bearer <token>`), or a client certificate verified by the TLS layer. The
//! token's name (or the certificate's subject) becomes the rows' `ingest_principal`.

use std::path::Path;

use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// One accepted token and the name it stands for.
#[derive(Clone, PartialEq, Eq)]
struct Token {
    name: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "Token({})", self.name)
    }
}

/// The receiver's authentication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    on: bool,
    tokens: Vec<Token>,
    client_certs: bool,
}

/// Why a request was refused (the text of the 401 answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub &'static str);

impl Auth {
    /// No authentication at all.
    pub fn off() -> Self {
        Self {
            on: false,
            tokens: Vec::new(),
            client_certs: false,
        }
    }

    /// Reads the tokens (`name:token` entries from the file and from `extra`).
    ///
    /// # Errors
    /// An unreadable file, an entry without a name or token, a name given twice, or
    /// authentication on with neither tokens nor client certificates.
    pub fn build(
        on: bool,
        file: Option<&Path>,
        extra: &[String],
        client_certs: bool,
    ) -> Result<Self> {
        let mut tokens: Vec<Token> = Vec::new();
        let mut entries: Vec<(String, String)> = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                action: "reading",
                path: path.to_owned(),
                source,
            })?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    entries.push((format!("{}:{}", path.display(), i + 1), line.to_string()));
                }
            }
        }
        for (i, e) in extra.iter().enumerate() {
            for part in e
                .split([',', '\n'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                entries.push((format!("token entry {}", i + 1), part.to_string()));
            }
        }
        for (at, entry) in entries {
            let bad = |m: &str| Error::Config {
                setting: "http.tokens".into(),
                message: format!("{at}: {m}"),
            };
            let (name, secret) = entry
                .split_once(':')
                .ok_or_else(|| bad("expected `name:token`"))?;
            let (name, secret) = (name.trim(), secret.trim());
            if name.is_empty() || secret.is_empty() {
                return Err(bad("expected `name:token` with both parts"));
            }
            if secret.len() < 16 {
                return Err(bad("a token must have at least 16 characters"));
            }
            if tokens.iter().any(|t| t.name == name) {
                return Err(bad(&format!("the name `{name}` is given twice")));
            }
            tokens.push(Token {
                name: name.to_string(),
                secret: secret.as_bytes().to_vec(),
            });
        }
        if on && tokens.is_empty() && !client_certs {
            return Err(Error::Config {
                setting: "http.auth".into(),
                message: "no token: give tokens (tokens_file, or VERDICT_COLLECT_TOKENS with \
                          `name:token` entries) or a client CA, or turn authentication off \
                          (auth = false, or --no-auth) on a trusted host"
                    .into(),
            });
        }
        Ok(Self {
            on,
            tokens,
            client_certs,
        })
    }

    /// Whether requests must authenticate.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Checks a request's `Authorization` header value and the client certificate subject of
    /// its connection; returns the principal (`None` when authentication is off).
    ///
    /// # Errors
    /// No or a wrong credential.
    pub fn check(
        &self,
        authorization: Option<&[u8]>,
        cert_subject: Option<&str>,
    ) -> std::result::Result<Option<String>, Refusal> {
        if !self.on {
            return Ok(cert_subject.map(str::to_string));
        }
        if !self.tokens.is_empty() {
            let Some(value) = authorization else {
                return Err(Refusal("a bearer token is required"));
            };
            let given = bearer(value).ok_or(Refusal("a bearer token is required"))?;
            // Compare with every token, in constant time each, and never stop early.
            let mut found: Option<&Token> = None;
            for t in &self.tokens {
                if bool::from(t.secret.as_slice().ct_eq(given)) {
                    found = Some(t);
                }
            }
            return found
                .map(|t| Some(t.name.clone()))
                .ok_or(Refusal("the token is not valid"));
        }
        // Client certificates only: the TLS layer refused connections without a valid one.
        match cert_subject {
            Some(s) if self.client_certs => Ok(Some(s.to_string())),
            _ => Err(Refusal("a client certificate is required")),
        }
    }
}

/// The token of a `Bearer <token>` header value.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let v = value.trim_ascii();
    let (scheme, rest) = v.split_at(v.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::build(
            true,
            None,
            &[
                "opa-east:0123456789abcdef0123".into(),
                "ci : ci-token-0123456789".into(),
            ],
            false,
        )
        .unwrap()
    }

    #[test]
    fn named_tokens_are_checked() {
        let a = auth();
        assert_eq!(
            a.check(Some(b"Bearer 0123456789abcdef0123"), None),
            Ok(Some("opa-east".into()))
        );
        assert_eq!(
            a.check(Some(b"bearer   ci-token-0123456789 "), None),
            Ok(Some("ci".into()))
        );
        assert_eq!(
            a.check(Some(b"Bearer 0123456789abcdef012"), None),
            Err(Refusal("the token is not valid"))
        );
        assert_eq!(
            a.check(Some(b"Basic 0123456789abcdef0123"), None),
            Err(Refusal("a bearer token is required"))
        );
        assert_eq!(
            a.check(None, Some("CN=x")),
            Err(Refusal("a bearer token is required"))
        );
        assert!(!format!("{a:?}").contains("0123456789"));
    }

    #[test]
    fn client_certificates_alone_and_auth_off() {
        let a = Auth::build(true, None, &[], true).unwrap();
        assert_eq!(a.check(None, Some("CN=agent")), Ok(Some("CN=agent".into())));
        assert!(a.check(None, None).is_err());
        assert_eq!(Auth::off().check(None, None), Ok(None));
    }

    #[test]
    fn token_files_and_bad_entries() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        std::fs::write(&f, "# uploaders\nopa:aaaaaaaaaaaaaaaaaaaa\n\n").unwrap();
        let a = Auth::build(true, Some(&f), &[], false).unwrap();
        assert_eq!(
            a.check(Some(b"Bearer aaaaaaaaaaaaaaaaaaaa"), None),
            Ok(Some("opa".into()))
        );
        for (entry, want) in [
            ("nocolon", "expected `name:token`"),
            ("a:short", "at least 16"),
            (":aaaaaaaaaaaaaaaaaaaa", "both parts"),
            ("opa:bbbbbbbbbbbbbbbbbbbb", "given twice"),
        ] {
            let e = Auth::build(true, Some(&f), &[entry.into()], false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{entry}: {e}");
        }
        assert!(Auth::build(true, None, &[], false).is_err());
        assert!(!Auth::build(false, None, &[], false).unwrap().is_on());
    }
}
