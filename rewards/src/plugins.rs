//! The verifier registry as a config file writes it: `[verifiers.<name>]` entries
//! that map a domain or `data_source` name (and any `aliases`) to a built-in,
//! external, sandboxed-code or judge verifier.
//!
//! ```toml
//! # A team's Python verifier for the `counting` domain: no Rust.
//! [verifiers.counting]
//! kind = "external"
//! command = ["python3", "examples/verifiers/exact_match.py"]
//! concurrency = 2
//! timeout_s = 5
//!
//! # Generated programs run against unit tests in the sandbox.
//! [verifiers.code]
//! kind = "code"
//! aliases = ["python", "leetcode"]
//! concurrency = 2
//! sandbox = { timeout_s = 5, memory_mb = 256 }
//!
//! # Open-ended answers: majority vote of OpenAI-compatible endpoints.
//! [verifiers.essay]
//! kind = "judge"
//! endpoints = [{ url = "http://127.0.0.1:8000/v1", model = "judge" }]
//!
//! # Another name for a built-in verifier.
//! [verifiers.geometry]
//! kind = "builtin"
//! builtin = "math"
//! ```
//!
//! An entry replaces whatever was registered under its name, a built-in included,
//! so `[verifiers.math]` re-routes every math domain. [`build_registry`] starts the
//! processes and probes the sandbox, so a bad entry fails before a run begins.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::code::{CodeConfig, CodeVerifier};
use crate::external::{ExternalConfig, ExternalVerifier};
use crate::judge::{JudgeConfig, JudgeVerifier};
use crate::{Registry, Verifier};

/// What a `[verifiers.<name>]` entry runs.
#[derive(Debug, Clone, PartialEq)]
pub enum VerifierSpec {
    /// A built-in verifier under another name (`builtin = "math"`).
    Builtin {
        /// The built-in's name.
        builtin: String,
    },
    /// A pool of external processes ([`crate::external`]).
    External(ExternalConfig),
    /// Python programs run against tests in the sandbox ([`crate::code`]).
    Code(CodeConfig),
    /// OpenAI-compatible judge endpoints ([`crate::judge`]).
    Judge(JudgeConfig),
}

impl VerifierSpec {
    /// The `kind` value of this spec.
    pub fn kind(&self) -> &'static str {
        match self {
            VerifierSpec::Builtin { .. } => "builtin",
            VerifierSpec::External(_) => "external",
            VerifierSpec::Code(_) => "code",
            VerifierSpec::Judge(_) => "judge",
        }
    }
}

/// One `[verifiers.<name>]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifierEntry {
    /// Further names (domains, `data_source` values) this verifier answers to.
    pub aliases: Vec<String>,
    /// What runs.
    pub spec: VerifierSpec,
}

/// The `kind` values.
pub const KINDS: [&str; 4] = ["builtin", "external", "code", "judge"];

impl<'de> Deserialize<'de> for VerifierEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let kind = match map.remove("kind") {
            Some(serde_json::Value::String(k)) => k,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`kind` must be a string, got {other}"
                )))
            }
            None => {
                return Err(D::Error::custom(format!(
                    "missing `kind` (one of {})",
                    KINDS.join(", ")
                )))
            }
        };
        let aliases: Vec<String> = match map.remove("aliases") {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| D::Error::custom(format!("`aliases`: {e}")))?,
            None => Vec::new(),
        };
        let rest = serde_json::Value::Object(map);
        let field = |e: serde_json::Error| D::Error::custom(format!("kind = \"{kind}\": {e}"));
        let spec = match kind.as_str() {
            "builtin" => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct B {
                    builtin: String,
                }
                let b: B = serde_json::from_value(rest).map_err(field)?;
                VerifierSpec::Builtin { builtin: b.builtin }
            }
            "external" => VerifierSpec::External(serde_json::from_value(rest).map_err(field)?),
            "code" => VerifierSpec::Code(serde_json::from_value(rest).map_err(field)?),
            "judge" => VerifierSpec::Judge(serde_json::from_value(rest).map_err(field)?),
            other => {
                return Err(D::Error::custom(format!(
                    "unknown kind `{other}` (one of {})",
                    KINDS.join(", ")
                )))
            }
        };
        Ok(VerifierEntry { aliases, spec })
    }
}

impl Serialize for VerifierEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let body = match &self.spec {
            VerifierSpec::Builtin { builtin } => serde_json::json!({ "builtin": builtin }),
            VerifierSpec::External(c) => serde_json::to_value(c).map_err(S::Error::custom)?,
            VerifierSpec::Code(c) => serde_json::to_value(c).map_err(S::Error::custom)?,
            VerifierSpec::Judge(c) => serde_json::to_value(c).map_err(S::Error::custom)?,
        };
        let mut map = match body {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        map.insert("kind".into(), self.spec.kind().into());
        if !self.aliases.is_empty() {
            map.insert("aliases".into(), serde_json::json!(self.aliases));
        }
        map.serialize(s)
    }
}

/// Error building a configured verifier.
#[derive(Debug, thiserror::Error)]
#[error("verifier `{name}`: {reason}")]
pub struct PluginError {
    /// The entry's name.
    pub name: String,
    /// What went wrong.
    pub reason: String,
}

/// Checks an entry's settings without starting anything; the error names the field.
pub fn validate(name: &str, entry: &VerifierEntry) -> Result<(), PluginError> {
    let err = |reason: String| PluginError {
        name: name.to_string(),
        reason,
    };
    if name.trim().is_empty() || entry.aliases.iter().any(|a| a.trim().is_empty()) {
        return Err(err("names and aliases must not be empty".into()));
    }
    match &entry.spec {
        VerifierSpec::Builtin { builtin } => Registry::builtin()
            .get(builtin)
            .map(|_| ())
            .map_err(|e| err(format!("`builtin`: {e}"))),
        VerifierSpec::External(c) => c.validate().map_err(|e| err(e.to_string())),
        VerifierSpec::Code(c) => {
            if c.concurrency == 0 || c.concurrency > 256 {
                return Err(err(format!(
                    "`concurrency` must lie in 1..=256, got {}",
                    c.concurrency
                )));
            }
            c.sandbox.validate().map_err(|e| err(e.to_string()))
        }
        VerifierSpec::Judge(c) => c.validate().map_err(|e| err(e.to_string())),
    }
}

/// Starts the verifier an entry describes (processes, sandbox probe, HTTP agent).
pub fn build(name: &str, entry: &VerifierEntry) -> Result<Arc<dyn Verifier>, PluginError> {
    validate(name, entry)?;
    let err = |reason: String| PluginError {
        name: name.to_string(),
        reason,
    };
    Ok(match &entry.spec {
        VerifierSpec::Builtin { builtin } => Registry::builtin()
            .get(builtin)
            .map_err(|e| err(e.to_string()))?,
        VerifierSpec::External(c) => {
            Arc::new(ExternalVerifier::start(name, c.clone()).map_err(|e| err(e.to_string()))?)
        }
        VerifierSpec::Code(c) => {
            Arc::new(CodeVerifier::new(name, c.clone()).map_err(|e| err(e.to_string()))?)
        }
        VerifierSpec::Judge(c) => {
            Arc::new(JudgeVerifier::new(name, c.clone()).map_err(|e| err(e.to_string()))?)
        }
    })
}

/// The built-in registry plus every entry, each under its name and aliases (an
/// entry replaces a built-in of the same name).
pub fn build_registry(entries: &BTreeMap<String, VerifierEntry>) -> Result<Registry, PluginError> {
    let mut registry = Registry::builtin();
    for (name, entry) in entries {
        let v = build(name, entry)?;
        registry.register(name, v.clone());
        for alias in &entry.aliases {
            registry.register(alias, v.clone());
        }
    }
    Ok(registry)
}

/// Every name an entry set registers (names and aliases), for routing domains.
pub fn names(entries: &BTreeMap<String, VerifierEntry>) -> Vec<String> {
    entries
        .iter()
        .flat_map(|(n, e)| std::iter::once(n.clone()).chain(e.aliases.iter().cloned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<BTreeMap<String, VerifierEntry>, String> {
        #[derive(Deserialize)]
        struct Doc {
            verifiers: BTreeMap<String, VerifierEntry>,
        }
        serde_json::from_str::<Doc>(src)
            .map(|d| d.verifiers)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn entries_parse_by_kind_and_round_trip() {
        let src = r#"{"verifiers": {
            "counting": {"kind": "external", "command": ["python3", "v.py"], "timeout_s": 5},
            "code": {"kind": "code", "aliases": ["python"], "sandbox": {"memory_mb": 256}},
            "geometry": {"kind": "builtin", "builtin": "math"}
        }}"#;
        let entries = parse(src).expect("parses");
        match &entries["counting"].spec {
            VerifierSpec::External(c) => {
                assert_eq!(c.timeout_s, 5.0);
                assert_eq!(c.concurrency, 2);
            }
            other => panic!("{other:?}"),
        }
        match &entries["code"].spec {
            VerifierSpec::Code(c) => assert_eq!(c.sandbox.memory_mb, 256),
            other => panic!("{other:?}"),
        }
        assert_eq!(entries["code"].aliases, ["python"]);
        let json = serde_json::to_string(&entries).expect("serialises");
        let back: BTreeMap<String, VerifierEntry> = serde_json::from_str(&json).expect("back");
        assert_eq!(back, entries);
        assert_eq!(names(&entries), ["code", "python", "counting", "geometry"]);
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let e = parse(r#"{"verifiers": {"x": {"command": ["a"]}}}"#).unwrap_err();
        assert!(
            e.contains("missing `kind` (one of builtin, external, code, judge)"),
            "{e}"
        );
        let e = parse(r#"{"verifiers": {"x": {"kind": "rpc"}}}"#).unwrap_err();
        assert!(e.contains("unknown kind `rpc`"), "{e}");
        let e =
            parse(r#"{"verifiers": {"x": {"kind": "external", "command": ["a"], "timeout": 3}}}"#)
                .unwrap_err();
        assert!(
            e.contains("kind = \"external\": unknown field `timeout`"),
            "{e}"
        );
        let entries = parse(r#"{"verifiers": {"x": {"kind": "builtin", "builtin": "poetry"}}}"#)
            .expect("parses");
        let e = validate("x", &entries["x"]).unwrap_err().to_string();
        assert!(
            e.starts_with("verifier `x`: `builtin`: unknown verifier `poetry`"),
            "{e}"
        );
        let entries =
            parse(r#"{"verifiers": {"x": {"kind": "external", "command": []}}}"#).expect("parses");
        assert!(build_registry(&entries).is_err());
    }

    #[test]
    fn an_entry_replaces_a_builtin_of_its_name() {
        let entries =
            parse(r#"{"verifiers": {"math": {"kind": "builtin", "builtin": "counting"}}}"#)
                .expect("parses");
        let r = build_registry(&entries).expect("builds");
        assert_eq!(r.get("math").expect("math").name(), "counting");
        assert_eq!(r.get("physics").expect("physics").name(), "physics");
    }
}
