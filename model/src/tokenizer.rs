//! Tokenizers: the built-in character-level tokenizer and, optionally, a Hugging Face
//! `tokenizer.json` vocabulary.
//!
//! Both give every GLM format marker (`<think>`, `</think>`, `<answer>`, `</answer>`,
//! `<|begin_of_box|>`, `<|end_of_box|>`) a single token id, plus the chat and
//! image/video placeholders the model lays prompts out with ([`Special`]).
//!
//! The character-level tokenizer's vocabulary is the [`Special`] tokens followed by
//! the 256 byte values: ASCII characters are one token each, other characters their
//! UTF-8 bytes, so every string encodes and decodes back exactly.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Special tokens, in id order for the character-level tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    /// Padding.
    Pad,
    /// End of a response.
    EndOfText,
    /// Start of the user turn.
    User,
    /// Start of the assistant turn.
    Assistant,
    /// `<think>`.
    Think,
    /// `</think>`.
    EndThink,
    /// `<answer>`.
    Answer,
    /// `</answer>`.
    EndAnswer,
    /// `<|begin_of_box|>`.
    BeginBox,
    /// `<|end_of_box|>`.
    EndBox,
    /// Opens an image's tokens.
    BeginImage,
    /// One image token (replaced by a vision feature).
    Image,
    /// Closes an image's tokens.
    EndImage,
    /// Opens a video's tokens.
    BeginVideo,
    /// One video token (replaced by a vision feature).
    Video,
    /// Closes a video's tokens.
    EndVideo,
}

impl Special {
    /// Every special token in id order.
    pub const ALL: [Special; 16] = [
        Special::Pad,
        Special::EndOfText,
        Special::User,
        Special::Assistant,
        Special::Think,
        Special::EndThink,
        Special::Answer,
        Special::EndAnswer,
        Special::BeginBox,
        Special::EndBox,
        Special::BeginImage,
        Special::Image,
        Special::EndImage,
        Special::BeginVideo,
        Special::Video,
        Special::EndVideo,
    ];

    /// The token's text (GLM's spelling).
    pub fn text(self) -> &'static str {
        match self {
            Special::Pad => "<|pad|>",
            Special::EndOfText => "<|endoftext|>",
            Special::User => "<|user|>",
            Special::Assistant => "<|assistant|>",
            Special::Think => "<think>",
            Special::EndThink => "</think>",
            Special::Answer => "<answer>",
            Special::EndAnswer => "</answer>",
            Special::BeginBox => "<|begin_of_box|>",
            Special::EndBox => "<|end_of_box|>",
            Special::BeginImage => "<|begin_of_image|>",
            Special::Image => "<|image|>",
            Special::EndImage => "<|end_of_image|>",
            Special::BeginVideo => "<|begin_of_video|>",
            Special::Video => "<|video|>",
            Special::EndVideo => "<|end_of_video|>",
        }
    }

    /// Whether the token is one of the six response-format markers.
    pub fn is_format_marker(self) -> bool {
        matches!(
            self,
            Special::Think
                | Special::EndThink
                | Special::Answer
                | Special::EndAnswer
                | Special::BeginBox
                | Special::EndBox
        )
    }
}

/// Errors loading a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The file could not be read.
    #[error("cannot read tokenizer file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a usable `tokenizer.json`.
    #[error("tokenizer file {path}: {field}: {message}")]
    Format {
        /// The file.
        path: String,
        /// The JSON field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Which tokenizer a model uses; stored in its config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenizerSpec {
    /// The built-in character (byte) level tokenizer.
    #[default]
    Chars,
    /// A Hugging Face `tokenizer.json` (its vocabulary and added tokens).
    HuggingFace {
        /// Path of the `tokenizer.json`.
        path: String,
    },
}

/// A tokenizer: text to ids and back, with every [`Special`] token a single id.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    specials: [u32; 16],
    /// Special token text → id, for splitting text on specials.
    special_text: Vec<(&'static str, u32)>,
    kind: Kind,
    vocab_size: usize,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Ids `16 + byte`.
    Bytes,
    /// Greedy longest match over a vocabulary (Hugging Face vocabularies).
    Vocab {
        /// Token text → id.
        ids: HashMap<String, u32>,
        /// Id → token text.
        texts: Vec<String>,
        /// Longest token, in bytes.
        longest: usize,
        /// Id used for text no token covers.
        unknown: u32,
    },
}

const BYTE_BASE: u32 = Special::ALL.len() as u32;

impl Tokenizer {
    /// The built-in character-level tokenizer (272 ids).
    pub fn chars() -> Tokenizer {
        let mut specials = [0u32; 16];
        for (i, s) in specials.iter_mut().enumerate() {
            *s = i as u32;
        }
        Tokenizer::with(specials, Kind::Bytes, BYTE_BASE as usize + 256)
    }

    fn with(specials: [u32; 16], kind: Kind, vocab_size: usize) -> Tokenizer {
        let mut special_text: Vec<(&'static str, u32)> = Special::ALL
            .iter()
            .zip(specials)
            .map(|(s, id)| (s.text(), id))
            .collect();
        // Longest first, so no special is cut short by another that prefixes it.
        special_text.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        Tokenizer {
            specials,
            special_text,
            kind,
            vocab_size,
        }
    }

    /// Builds the tokenizer `spec` names.
    pub fn from_spec(spec: &TokenizerSpec) -> Result<Tokenizer, TokenizerError> {
        match spec {
            TokenizerSpec::Chars => Ok(Tokenizer::chars()),
            TokenizerSpec::HuggingFace { path } => Tokenizer::from_hugging_face(Path::new(path)),
        }
    }

    /// Loads a Hugging Face `tokenizer.json`: the model's `vocab` and the
    /// `added_tokens`. Special tokens the file lacks are appended as new ids. Text is
    /// split on special tokens, then encoded by greedy longest match over the
    /// vocabulary (Hugging Face's own merges are not replayed, so ids can differ from
    /// its BPE on some strings; every id is a real vocabulary entry and decoding is
    /// exact for covered text).
    pub fn from_hugging_face(path: &Path) -> Result<Tokenizer, TokenizerError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Read {
            path: shown.clone(),
            source,
        })?;
        Tokenizer::parse_hugging_face(&text, &shown)
    }

    /// [`from_hugging_face`](Tokenizer::from_hugging_face) on the file's text;
    /// `origin` names it in errors.
    pub fn parse_hugging_face(text: &str, origin: &str) -> Result<Tokenizer, TokenizerError> {
        let bad = |field: &str, message: String| TokenizerError::Format {
            path: origin.to_string(),
            field: field.to_string(),
            message,
        };
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad("(file)", format!("not JSON: {e}")))?;
        let vocab = json
            .get("model")
            .and_then(|m| m.get("vocab"))
            .ok_or_else(|| bad("model.vocab", "missing".into()))?;
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut add =
            |tok: &str, id: &serde_json::Value, field: &str| -> Result<(), TokenizerError> {
                let id = id
                    .as_u64()
                    .filter(|&i| i < u32::MAX as u64 / 2)
                    .ok_or_else(|| bad(field, format!("id of {tok:?} is not a token id: {id}")))?;
                ids.insert(decode_byte_level(tok), id as u32);
                Ok(())
            };
        match vocab {
            serde_json::Value::Object(map) => {
                for (tok, id) in map {
                    add(tok, id, "model.vocab")?;
                }
            }
            // Unigram vocabularies: [[piece, score], ...], ids by position.
            serde_json::Value::Array(rows) => {
                for (i, row) in rows.iter().enumerate() {
                    let tok = row
                        .get(0)
                        .and_then(|t| t.as_str())
                        .ok_or_else(|| bad("model.vocab", format!("row {i} has no piece")))?;
                    add(tok, &serde_json::Value::from(i as u64), "model.vocab")?;
                }
            }
            other => {
                return Err(bad(
                    "model.vocab",
                    format!("expected an object or an array, got {other}"),
                ))
            }
        }
        if let Some(added) = json.get("added_tokens").and_then(|a| a.as_array()) {
            for (i, t) in added.iter().enumerate() {
                let content = t
                    .get("content")
                    .and_then(|c| c.as_str())
                    .ok_or_else(|| bad(&format!("added_tokens[{i}].content"), "missing".into()))?;
                let id = t
                    .get("id")
                    .ok_or_else(|| bad(&format!("added_tokens[{i}].id"), "missing".into()))?;
                let id = id
                    .as_u64()
                    .filter(|&i| i < u32::MAX as u64 / 2)
                    .ok_or_else(|| {
                        bad(
                            &format!("added_tokens[{i}].id"),
                            format!("not a token id: {id}"),
                        )
                    })?;
                ids.insert(content.to_string(), id as u32);
            }
        }
        if ids.is_empty() {
            return Err(bad("model.vocab", "empty vocabulary".into()));
        }
        let mut next = ids.values().max().map_or(0, |m| m + 1);
        let mut specials = [0u32; 16];
        for (slot, s) in specials.iter_mut().zip(Special::ALL) {
            *slot = match ids.get(s.text()) {
                Some(&id) => id,
                None => {
                    ids.insert(s.text().to_string(), next);
                    next += 1;
                    next - 1
                }
            };
        }
        let size = next as usize;
        let mut texts = vec![String::new(); size];
        for (t, &id) in &ids {
            texts[id as usize] = t.clone();
        }
        let longest = ids.keys().map(|k| k.len()).max().unwrap_or(1);
        let unknown = ["<unk>", "[UNK]", "<|unk|>"]
            .iter()
            .find_map(|u| ids.get(*u).copied())
            .unwrap_or(specials[0]);
        Ok(Tokenizer::with(
            specials,
            Kind::Vocab {
                ids,
                texts,
                longest,
                unknown,
            },
            size,
        ))
    }

    /// Number of ids (the model's vocabulary size).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id of a special token.
    pub fn special(&self, s: Special) -> u32 {
        self.specials[s as usize]
    }

    /// The special token an id stands for, if any.
    pub fn special_of(&self, id: u32) -> Option<Special> {
        self.specials
            .iter()
            .position(|&s| s == id)
            .map(|i| Special::ALL[i])
    }

    /// Encodes `text`; special token spellings in it become their single ids.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            // The next special token occurrence, if any.
            let next = rest.find('<').and_then(|start| {
                let mut at = start;
                loop {
                    let tail = &rest[at..];
                    if let Some(&(t, id)) =
                        self.special_text.iter().find(|(t, _)| tail.starts_with(t))
                    {
                        return Some((at, t.len(), id));
                    }
                    at += 1 + tail[1..].find('<')?;
                }
            });
            match next {
                Some((at, len, id)) => {
                    self.encode_plain(&rest[..at], &mut out);
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_plain(rest, &mut out);
                    break;
                }
            }
        }
        out
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        match &self.kind {
            Kind::Bytes => out.extend(text.bytes().map(|b| BYTE_BASE + b as u32)),
            Kind::Vocab {
                ids,
                longest,
                unknown,
                ..
            } => {
                let mut i = 0;
                while i < text.len() {
                    let mut end = (i + longest).min(text.len());
                    let mut found = None;
                    while end > i {
                        if text.is_char_boundary(end) {
                            if let Some(&id) = ids.get(&text[i..end]) {
                                found = Some((id, end));
                                break;
                            }
                        }
                        end -= 1;
                    }
                    match found {
                        Some((id, e)) => {
                            out.push(id);
                            i = e;
                        }
                        None => {
                            out.push(*unknown);
                            i += text[i..].chars().next().map_or(1, char::len_utf8);
                        }
                    }
                }
            }
        }
    }

    /// Decodes ids to text; special tokens are written with their spelling, ids
    /// outside the vocabulary are skipped, invalid UTF-8 is replaced.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(s) = self.special_of(id) {
                if s != Special::Pad {
                    bytes.extend_from_slice(s.text().as_bytes());
                }
                continue;
            }
            match &self.kind {
                Kind::Bytes => {
                    if let Some(b) = id.checked_sub(BYTE_BASE).filter(|b| *b < 256) {
                        bytes.push(b as u8);
                    }
                }
                Kind::Vocab { texts, .. } => {
                    if let Some(t) = texts.get(id as usize) {
                        bytes.extend_from_slice(t.as_bytes());
                    }
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A word-level vocabulary for `texts`, as a `tokenizer.json` that
/// [`Tokenizer::from_hugging_face`] reads: the 128 ASCII characters (ids 0–127, so
/// any ASCII text encodes), then every word — a run of ASCII letters, with the space
/// before it when there is one — of at least two letters that occurs `min_count`
/// times or more, most frequent first (ties in byte order), then `<unk>` (what
/// characters outside ASCII encode as) and the [`Special`] tokens. Digits and
/// punctuation stay single characters, so numbers and codes read one character at a
/// time, as with the character-level tokenizer. Special token spellings in `texts`
/// are not counted as words. The same texts give the same file.
///
/// Greedy longest match over this vocabulary reads a prompt such as "How many red
/// squares are there?" as 7 tokens instead of 30 characters.
pub fn word_vocabulary(texts: &[&str], min_count: usize) -> String {
    let probe = Tokenizer::chars();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for text in texts {
        let mut rest = *text;
        // Cut out special token spellings, then count the words between them.
        let mut plain: Vec<&str> = Vec::new();
        while let Some((at, len)) = probe
            .special_text
            .iter()
            .filter_map(|(t, _)| rest.find(t).map(|at| (at, t.len())))
            .min()
        {
            plain.push(&rest[..at]);
            rest = &rest[at + len..];
        }
        plain.push(rest);
        for part in plain {
            let bytes = part.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                let start = i;
                if bytes[i] == b' ' {
                    i += 1;
                }
                let letters = i;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                if i - letters >= 2 {
                    *counts.entry(part[start..i].to_string()).or_default() += 1;
                } else if i == start {
                    i += 1;
                }
            }
        }
    }
    let mut words: Vec<(String, usize)> = counts
        .into_iter()
        .filter(|(_, n)| *n >= min_count.max(1))
        .collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut vocab = serde_json::Map::new();
    for b in 0u8..128 {
        vocab.insert((b as char).to_string(), serde_json::Value::from(b as u64));
    }
    for (w, _) in words {
        let id = vocab.len() as u64;
        vocab.entry(w).or_insert(serde_json::Value::from(id));
    }
    let mut added =
        vec![serde_json::json!({"id": vocab.len(), "content": "<unk>", "special": true})];
    for s in Special::ALL {
        added.push(serde_json::json!({
            "id": vocab.len() + added.len(),
            "content": s.text(),
            "special": true
        }));
    }
    let file = serde_json::json!({
        "version": "1.0",
        "added_tokens": added,
        "model": {
            "type": "WordLevel",
            "unk_token": "<unk>",
            "vocab": vocab,
        },
    });
    serde_json::to_string_pretty(&file).unwrap_or_default()
}

/// GPT-2 style byte-level vocabularies spell bytes as printable characters (`Ġ` for
/// a space, …); this maps such a token back to its text. Tokens that are not
/// byte-level spellings come back unchanged.
fn decode_byte_level(token: &str) -> String {
    // The GPT-2 table: printable Latin-1 bytes stand for themselves; the others map
    // to U+0100 upwards in byte order.
    let mut table = [0u8; 324];
    let mut mapped = [false; 324];
    let mut n = 0u32;
    for b in 0u32..256 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            b
        } else {
            n += 1;
            255 + n
        };
        table[c as usize] = b as u8;
        mapped[c as usize] = true;
    }
    let chars: Vec<char> = token.chars().collect();
    let needs = chars.iter().any(|&c| (256..324).contains(&(c as u32)));
    if !needs {
        return token.to_string();
    }
    let mut bytes = Vec::with_capacity(chars.len());
    for c in chars {
        let u = c as usize;
        if u < 324 && mapped[u] {
            bytes.push(table[u]);
        } else {
            return token.to_string();
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|_| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_vocabulary_reads_words_as_single_tokens_and_round_trips() {
        let texts = [
            "How many red squares are there in the image? Answer with a number.",
            "How many blue circles are there in the image? Answer with a number.",
            "<think>I see 3 red squares.</think><answer>There are <|begin_of_box|>3<|end_of_box|></answer>",
            "A rare word: zebra.",
        ];
        let file = word_vocabulary(&texts, 2);
        assert_eq!(
            file,
            word_vocabulary(&[texts[3], texts[1], texts[0], texts[2]], 2)
        );
        let t = Tokenizer::parse_hugging_face(&file, "vocab.json").unwrap();
        let prompt = "How many red squares are there in the image?";
        let ids = t.encode(prompt);
        assert_eq!(t.decode(&ids), prompt);
        // How, many, red, squares, are, there, in, the, image, ?
        assert_eq!(ids.len(), 10, "{ids:?}");
        // Seen once: spelled out; special spellings are not words.
        assert_eq!(t.encode(" zebra").len(), 6);
        assert_eq!(t.encode("box").len(), 3);
        for m in Special::ALL {
            assert_eq!(t.encode(m.text()), vec![t.special(m)], "{m:?}");
        }
        let mixed = "<think>12 red, 3 blue; x=4 → y</think><answer><|begin_of_box|>[1,2]<|end_of_box|></answer>";
        let back = t.decode(&t.encode(mixed));
        assert_eq!(back, mixed.replace('→', "<unk>"));
        assert_eq!(t.vocab_size(), 128 + 12 + 1 + Special::ALL.len(), "{file}");
    }

    #[test]
    fn markers_are_single_tokens_and_text_round_trips() {
        let t = Tokenizer::chars();
        let s = "<think>3 × 4 = 12 ²√</think><answer>so <|begin_of_box|>12<|end_of_box|></answer>";
        let ids = t.encode(s);
        assert_eq!(t.decode(&ids), s);
        for m in Special::ALL.iter().filter(|m| m.is_format_marker()) {
            let ids = t.encode(m.text());
            assert_eq!(ids, vec![t.special(*m)], "{m:?}");
        }
        assert_eq!(t.vocab_size(), 272);
        // A lone '<' and partial markers stay characters.
        let s = "a < b <thin <answer";
        assert_eq!(t.decode(&t.encode(s)), s);
        assert_eq!(t.encode("<").len(), 1);
    }

    #[test]
    fn every_id_decodes_without_panicking() {
        let t = Tokenizer::chars();
        let all: Vec<u32> = (0..400).collect();
        let _ = t.decode(&all);
    }

    #[test]
    fn hugging_face_vocabularies_load_with_specials() {
        let json = r#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġc": 3, "<unk>": 4}},
            "added_tokens": [{"id": 5, "content": "<think>"}]}"#;
        let t = Tokenizer::parse_hugging_face(json, "tok.json").unwrap();
        assert_eq!(t.special(Special::Think), 5);
        // The other 15 specials are appended.
        assert_eq!(t.vocab_size(), 6 + 15);
        assert_eq!(t.encode("ab c<think>a"), vec![2, 3, 5, 0]);
        assert_eq!(t.decode(&[2, 3, 5, 0]), "ab c<think>a");
        assert_eq!(t.encode("z"), vec![4]);
        let err = Tokenizer::parse_hugging_face(r#"{"model": {}}"#, "tok.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tok.json") && err.contains("model.vocab"),
            "{err}"
        );
        let err = Tokenizer::parse_hugging_face(r#"{"model": {"vocab": {"a": -1}}}"#, "tok.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.vocab"), "{err}");
    }
}
