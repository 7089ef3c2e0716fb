//! The crate dependency rules of the design (DESIGN §2), checked against
//! `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

#[test]
fn crates_depend_only_along_allowed_edges() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut externals: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        for d in p["dependencies"].as_array().unwrap() {
            // Dev-dependencies (tests) are exempt: end-to-end tests may read the store.
            if d["kind"].as_str() == Some("dev") {
                continue;
            }
            let dep = d["name"].as_str().unwrap().to_string();
            if dep.starts_with("rlcs") {
                edges.entry(name.clone()).or_default().insert(dep);
            } else {
                externals.entry(name.clone()).or_default().insert(dep);
            }
        }
        edges.entry(name).or_default();
    }
    // The core crates the actors wrap; experiments may use them too (through actors).
    const CORE: [&str; 5] = [
        "rlcs-curriculum",
        "rlcs-rewards",
        "rlcs-storage",
        "rlcs-model",
        "rlcs-domains",
    ];
    let with_actors: Vec<&str> = std::iter::once("rlcs-actors").chain(CORE).collect();
    let allowed: BTreeMap<&str, &[&str]> = [
        ("rlcs-curriculum", &[][..]),
        ("rlcs-rewards", &[][..]),
        ("rlcs-storage", &["rlcs-curriculum"][..]),
        ("rlcs-model", &[][..]),
        ("rlcs-domains", &["rlcs-rewards"][..]),
        ("rlcs-actors", &CORE[..]),
        ("rlcs-experiments", &with_actors[..]),
        ("rlcs", &["rlcs-experiments"][..]),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        edges.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        allowed.keys().copied().collect::<BTreeSet<_>>(),
        "workspace members differ from the design"
    );
    for (krate, deps) in &edges {
        for d in deps {
            assert!(
                allowed[krate.as_str()].contains(&d.as_str()),
                "forbidden dependency {krate} -> {d}"
            );
        }
    }
    // Pure leaf crates: no async runtime, actors, libtorch or database.
    for leaf in ["rlcs-curriculum", "rlcs-rewards"] {
        for banned in ["tokio", "ractor", "tch", "sled", "async-std"] {
            assert!(
                !externals.get(leaf).is_some_and(|e| e.contains(banned)),
                "{leaf} must not depend on {banned}"
            );
        }
    }
    assert!(
        externals
            .get("rlcs-model")
            .is_some_and(|e| e.contains("tch")),
        "the model crate is where libtorch lives"
    );
    for not_model in [
        "rlcs-curriculum",
        "rlcs-rewards",
        "rlcs-storage",
        "rlcs-domains",
    ] {
        assert!(!externals.get(not_model).is_some_and(|e| e.contains("tch")));
    }
}
