//! The signing test vectors of docs/integrator-guide.md, recomputed with the reference client: the
//! guide is read here, so a value changed in the document (or in the signing code) fails this test.
//! The examples under docs/examples/ check themselves against request vector 1 before they talk to
//! a server; they must carry the value the guide gives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yibao_channel_client::signing;

fn repository_file(relative: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (path, text)
}

/// One `text` block of the guide that starts with `vector:`: its `key: value` lines, `\n` in a
/// value standing for a newline byte.
type Vector = BTreeMap<String, String>;

fn vectors(guide: &str) -> Vec<Vector> {
    let mut out = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for line in guide.lines() {
        match &mut block {
            None if line.trim_end() == "```text" => block = Some(Vec::new()),
            None => {}
            Some(lines) if line.trim_end() == "```" => {
                if lines.first().is_some_and(|l| l.starts_with("vector:")) {
                    let mut vector = Vector::new();
                    for l in lines.iter() {
                        let (key, value) = l
                            .split_once(':')
                            .unwrap_or_else(|| panic!("a vector line without a key: {l:?}"));
                        let previous = vector.insert(
                            key.trim().to_owned(),
                            value.trim_start().replace("\\n", "\n"),
                        );
                        assert!(previous.is_none(), "{key} twice in one vector");
                    }
                    out.push(vector);
                }
                block = None;
            }
            Some(lines) => lines.push(line),
        }
    }
    out
}

fn field<'a>(vector: &'a Vector, key: &str) -> &'a str {
    vector
        .get(key)
        .unwrap_or_else(|| panic!("vector without {key}: {vector:?}"))
}

#[test]
fn the_guides_test_vectors_are_what_the_reference_client_computes() {
    let (_, guide) = repository_file("docs/integrator-guide.md");
    let vectors = vectors(&guide);
    let kinds: Vec<&str> = vectors.iter().map(|v| field(v, "vector")).collect();
    assert_eq!(
        kinds,
        ["request", "request", "request", "response", "response"],
        "the guide's vectors"
    );
    for vector in &vectors {
        let secret = field(vector, "secret").as_bytes();
        let path = field(vector, "path_and_query");
        let timestamp: i64 = field(vector, "timestamp").parse().unwrap();
        let nonce = field(vector, "nonce");
        assert!(signing::valid_nonce(nonce), "{nonce}");
        let body = field(vector, "body").as_bytes();
        assert_eq!(
            signing::body_hash(body),
            field(vector, "body_sha256"),
            "{vector:?}"
        );
        let to_sign = match field(vector, "vector") {
            "request" => signing::request_string_to_sign(
                field(vector, "method"),
                path,
                timestamp,
                nonce,
                body,
            ),
            "response" => signing::response_string_to_sign(
                field(vector, "status").parse().unwrap(),
                path,
                timestamp,
                nonce,
                body,
            ),
            other => panic!("unknown vector kind {other}"),
        };
        assert_eq!(to_sign, field(vector, "string_to_sign"), "{vector:?}");
        let signature = signing::sign(secret, &to_sign);
        assert_eq!(signature, field(vector, "signature"), "{vector:?}");
        assert!(signing::verify(secret, &to_sign, &signature));
    }
    // The first vector carries a non-ASCII (UTF-8) body and the third a multi-line one: the two
    // mistakes integrators make most.
    assert!(!field(&vectors[0], "body").is_ascii());
    assert!(field(&vectors[2], "body").ends_with('\n'));
    assert_eq!(field(&vectors[1], "body"), "");
}

#[test]
fn the_examples_check_themselves_against_the_guides_first_vector() {
    let (_, guide) = repository_file("docs/integrator-guide.md");
    let first = vectors(&guide).into_iter().next().expect("a vector");
    let signature = field(&first, "signature");
    for example in [
        "docs/examples/python/yibao_channel.py",
        "docs/examples/java/YibaoChannel.java",
        "docs/examples/curl/yibao_channel.sh",
    ] {
        let (path, text) = repository_file(example);
        assert!(
            text.contains(signature) && text.contains(field(&first, "nonce")),
            "{} does not check itself against the guide's request vector 1",
            path.display()
        );
        assert!(
            guide.contains(example.trim_start_matches("docs/")),
            "the guide does not point to {example}"
        );
    }
}
