//! The dataset readers on fixtures written here: verl-style JSONL and nested,
//! snappy-compressed Parquet, images as files and as bytes (PNG and JPEG), good and
//! bad rows.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use rlcs_domains::image::{BLACK, WHITE};
use rlcs_domains::reader::{read_dataset, OnBadRow, ReaderError, ReaderOptions};
use rlcs_domains::{Canvas, Image};
use rlcs_rewards::Registry;
use serde_json::json;

fn picture(text: &str) -> Image {
    let mut c = Canvas::new(40, 12, WHITE);
    c.text(2, 2, text, 1, BLACK);
    c.finish()
}

fn jpeg_of(img: &Image) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, 95);
    enc.encode(
        &img.rgb,
        img.width as u16,
        img.height as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .unwrap();
    out
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn jsonl_rows_load_and_bad_rows_are_named_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let png = picture("42").to_png().unwrap();
    std::fs::create_dir(dir.path().join("img")).unwrap();
    std::fs::write(dir.path().join("img/a.png"), &png).unwrap();
    let jpg = jpeg_of(&picture("7"));
    let rows = [
        // 1: chat prompt, image by relative path, verifier from `ability`.
        json!({"data_source": "synthetic/stem", "ability": "math",
               "prompt": [{"role": "user", "content": "<image>What number is shown?"}],
               "images": ["img/a.png"],
               "reward_model": {"style": "rule", "ground_truth": "42"},
               "extra_info": {"difficulty": 0.25}}),
        // 2: plain prompt, JPEG bytes as base64, numeric gold, verifier from data_source.
        json!({"data_source": "counting", "prompt": "How many?",
               "images": [{"bytes": b64(&jpg), "path": null}],
               "reward_model": {"ground_truth": 7}}),
        // 3: missing gold.
        json!({"data_source": "counting", "prompt": "How many?"}),
        // 4: image file that does not exist.
        json!({"data_source": "ocr", "prompt": "Read it.", "images": ["img/missing.png"],
               "reward_model": {"ground_truth": "abc"}}),
        // 5: no verifier can be found.
        json!({"data_source": "mystery/set", "prompt": "Hm?",
               "reward_model": {"ground_truth": "1"}}),
        // 6: a duplicate of row 1.
        json!({"data_source": "synthetic/stem", "ability": "math",
               "prompt": [{"role": "user", "content": "<image>What number is shown?"}],
               "images": ["img/a.png"],
               "reward_model": {"ground_truth": "42"}}),
        // 7: grounding gold as a list: kept as JSON.
        json!({"data_source": "refcoco", "ability": "grounding", "prompt": "Box the cat.",
               "reward_model": {"ground_truth": [[10, 20, 300, 400]]}}),
        // 8: difficulty out of range.
        json!({"data_source": "counting", "prompt": "How many dogs?", "difficulty": 3,
               "reward_model": {"ground_truth": "2"}}),
    ];
    let mut text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    // Line 9 is blank, line 10 is not JSON.
    text.push_str("\n{not json\n");
    let path = dir.path().join("train.jsonl");
    std::fs::write(&path, text).unwrap();

    let reg = Registry::builtin();
    let ds = read_dataset(&path, &reg, &ReaderOptions::default()).unwrap();
    assert_eq!(ds.samples.len(), 3, "{:?}", ds.skipped);
    assert_eq!(ds.verifiers, ["math", "counting", "grounding"]);
    let s = &ds.samples[0];
    assert_eq!(s.prompt, "What number is shown?");
    assert_eq!(s.domain, "synthetic/stem");
    assert_eq!(s.gold, "42");
    assert_eq!(s.difficulty, 0.25);
    assert_eq!(s.images, vec![picture("42")]);
    let j = &ds.samples[1].images[0];
    assert_eq!((j.width, j.height), (40, 12));
    assert_eq!(ds.samples[1].gold, "7");
    assert_eq!(ds.samples[2].gold, "[[10,20,300,400]]");

    let bad: Vec<(usize, Option<&str>)> = ds
        .skipped
        .iter()
        .map(|e| (e.row, e.field.as_deref()))
        .collect();
    assert_eq!(
        bad,
        [
            (3, Some("reward_model.ground_truth")),
            (4, Some("images")),
            (5, Some("ability")),
            (6, None),
            (8, Some("difficulty")),
            (10, None),
        ]
    );
    for e in &ds.skipped {
        let msg = e.to_string();
        assert!(msg.contains("train.jsonl: row "), "{msg}");
    }
    assert!(ds.skipped[1].message.contains("missing.png"));
    assert!(ds.skipped[3].message.contains("duplicate of row 1"));

    // Fail mode stops at the first bad row and names it.
    let fail = ReaderOptions {
        on_bad_row: OnBadRow::Fail,
        ..ReaderOptions::default()
    };
    match read_dataset(&path, &reg, &fail) {
        Err(ReaderError::Row(e)) => assert_eq!(e.row, 3),
        other => panic!("expected a row error, got {other:?}"),
    }
    // A verifier override makes row 5 readable; a limit stops early.
    let over = ReaderOptions {
        verifier: Some("math".into()),
        limit: Some(4),
        ..ReaderOptions::default()
    };
    let ds = read_dataset(&path, &reg, &over).unwrap();
    assert_eq!(ds.samples.len(), 4);
    assert!(ds.verifiers.iter().all(|v| v == "math"));
    // A missing file is a file error naming it.
    let missing = read_dataset(
        &dir.path().join("nope.jsonl"),
        &reg,
        &ReaderOptions::default(),
    );
    assert!(matches!(missing, Err(ReaderError::File { .. })));
}

#[test]
fn sft_templates_are_glm_responses_whatever_the_row_gives() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        json!({"ability": "math", "prompt": "1+1?", "reward_model": {"ground_truth": "2"}}),
        json!({"ability": "math", "prompt": "2+2?", "reward_model": {"ground_truth": "4"},
               "extra_info": {"solution": " Two and two make four. "}}),
        json!({"ability": "math", "prompt": "3+3?", "reward_model": {"ground_truth": "6"},
               "extra_info": {"response":
                 "<think>3+3</think><answer><|begin_of_box|>6<|end_of_box|></answer>"}}),
    ];
    let path = dir.path().join("t.jsonl");
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let ds = read_dataset(&path, &Registry::builtin(), &ReaderOptions::default()).unwrap();
    let templates: Vec<&str> = ds.samples.iter().map(|s| s.template.as_str()).collect();
    assert_eq!(
        templates,
        [
            "<think></think><answer><|begin_of_box|>2<|end_of_box|></answer>",
            "<think>Two and two make four.</think><answer><|begin_of_box|>4<|end_of_box|></answer>",
            "<think>3+3</think><answer><|begin_of_box|>6<|end_of_box|></answer>",
        ]
    );
    // Each template earns full reward from the row's own verifier.
    let math = Registry::builtin().get("math").unwrap();
    for s in &ds.samples {
        assert_eq!(
            math.verify(&s.template, &s.gold).reward,
            1.0,
            "{}",
            s.template
        );
    }
}

const SCHEMA: &str = "
message row {
  required binary data_source (UTF8);
  optional binary ability (UTF8);
  required group prompt (LIST) {
    repeated group list {
      required group element {
        required binary role (UTF8);
        required binary content (UTF8);
      }
    }
  }
  optional group images (LIST) {
    repeated group list {
      required group element {
        optional binary bytes;
        optional binary path (UTF8);
      }
    }
  }
  required group reward_model {
    required binary ground_truth (UTF8);
    optional binary style (UTF8);
  }
}";

/// One image of a fixture row: bytes and/or path.
type ImageCell = (Option<Vec<u8>>, Option<&'static str>);

/// One leaf column: values, definition levels, repetition levels.
type Column = (Vec<ByteArray>, Vec<i16>, Vec<i16>);

struct Row {
    source: &'static str,
    ability: Option<&'static str>,
    messages: Vec<(&'static str, String)>,
    images: Option<Vec<ImageCell>>,
    gold: &'static str,
}

/// Writes `rows` with the nested verl schema (repetition and definition levels by hand).
fn write_parquet(path: &Path, rows: &[Row]) {
    let schema = Arc::new(parse_message_type(SCHEMA).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut group = w.next_row_group().unwrap();
    let s = |x: &str| ByteArray::from(x.as_bytes().to_vec());
    // (values, def levels, rep levels) per leaf column, in schema order.
    let mut cols: Vec<Column> = vec![Default::default(); 8];
    for r in rows {
        cols[0].0.push(s(r.source));
        match r.ability {
            Some(a) => {
                cols[1].0.push(s(a));
                cols[1].1.push(1);
            }
            None => cols[1].1.push(0),
        }
        // prompt.list.element.{role, content}: max def 1, max rep 1.
        for (k, (role, content)) in r.messages.iter().enumerate() {
            let rep = i16::from(k > 0);
            cols[2].0.push(s(role));
            cols[2].1.push(1);
            cols[2].2.push(rep);
            cols[3].0.push(s(content));
            cols[3].1.push(1);
            cols[3].2.push(rep);
        }
        // images (optional) .list (repeated) .element.{bytes, path} (optional): max def 3.
        match &r.images {
            None => {
                for c in [4, 5] {
                    cols[c].1.push(0);
                    cols[c].2.push(0);
                }
            }
            Some(items) => {
                for (k, (bytes, p)) in items.iter().enumerate() {
                    let rep = i16::from(k > 0);
                    match bytes {
                        Some(b) => {
                            cols[4].0.push(ByteArray::from(b.clone()));
                            cols[4].1.push(3);
                        }
                        None => cols[4].1.push(2),
                    }
                    cols[4].2.push(rep);
                    match p {
                        Some(p) => {
                            cols[5].0.push(s(p));
                            cols[5].1.push(3);
                        }
                        None => cols[5].1.push(2),
                    }
                    cols[5].2.push(rep);
                }
            }
        }
        cols[6].0.push(s(r.gold));
        cols[7].0.push(s("rule"));
        cols[7].1.push(1);
    }
    let mut k = 0;
    while let Some(mut c) = group.next_column().unwrap() {
        let (values, def, rep) = &cols[k];
        let def = (!def.is_empty()).then_some(def.as_slice());
        let rep = (!rep.is_empty()).then_some(rep.as_slice());
        c.typed::<ByteArrayType>()
            .write_batch(values, def, rep)
            .unwrap();
        c.close().unwrap();
        k += 1;
    }
    assert_eq!(k, 8);
    group.close().unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_rows_with_nested_columns_and_binary_images_load() {
    let dir = tempfile::tempdir().unwrap();
    let a = picture("A1");
    std::fs::write(dir.path().join("b.png"), picture("B2").to_png().unwrap()).unwrap();
    let rows = vec![
        Row {
            source: "hiyouga/geometry3k",
            ability: Some("math"),
            messages: vec![
                ("system", "think first".into()),
                ("user", "<image>Find x.".into()),
            ],
            images: Some(vec![
                (Some(a.to_png().unwrap()), None),
                (None, Some("b.png")),
            ]),
            gold: "12",
        },
        Row {
            source: "ocr",
            ability: None,
            messages: vec![("user", "Read the text.".into())],
            images: None,
            gold: "hello",
        },
        Row {
            source: "counting",
            ability: None,
            messages: vec![("user", "How many?".into())],
            // Neither bytes nor path: a bad row, named.
            images: Some(vec![(None, None)]),
            gold: "3",
        },
        Row {
            source: "counting",
            ability: None,
            messages: vec![("user", "How many now?".into())],
            images: Some(vec![(Some(b"not an image".to_vec()), None)]),
            gold: "3",
        },
    ];
    let path = dir.path().join("train.parquet");
    write_parquet(&path, &rows);
    let reg = Registry::builtin();
    let ds = read_dataset(&path, &reg, &ReaderOptions::default()).unwrap();
    assert_eq!(ds.samples.len(), 2, "{:?}", ds.skipped);
    let s = &ds.samples[0];
    assert_eq!(s.prompt, "Find x.");
    assert_eq!(s.images, vec![a, picture("B2")]);
    assert_eq!(s.gold, "12");
    assert_eq!(ds.verifiers, ["math", "ocr"]);
    assert_eq!(ds.samples[1].images.len(), 0);
    let bad: Vec<(usize, Option<&str>)> = ds
        .skipped
        .iter()
        .map(|e| (e.row, e.field.as_deref()))
        .collect();
    assert_eq!(bad, [(3, Some("images")), (4, Some("images"))]);
    assert!(ds.skipped[1].message.contains("not a PNG or JPEG"));

    // The same rows as JSONL (bytes in base64) give the same samples.
    let jsonl: String = [
        json!({"data_source": "hiyouga/geometry3k", "ability": "math",
               "prompt": [{"role": "system", "content": "think first"},
                          {"role": "user", "content": "<image>Find x."}],
               "images": [{"bytes": b64(&picture("A1").to_png().unwrap())}, {"path": "b.png"}],
               "reward_model": {"ground_truth": "12", "style": "rule"}}),
        json!({"data_source": "ocr", "prompt": [{"role": "user", "content": "Read the text."}],
               "reward_model": {"ground_truth": "hello"}}),
    ]
    .iter()
    .map(|r| format!("{r}\n"))
    .collect();
    let jpath = dir.path().join("same.jsonl");
    std::fs::write(&jpath, jsonl).unwrap();
    let dj = read_dataset(&jpath, &reg, &ReaderOptions::default()).unwrap();
    assert_eq!(dj.samples, ds.samples);

    // A truncated Parquet file is a file error naming it, not a panic.
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    match read_dataset(&cut, &reg, &ReaderOptions::default()) {
        Err(ReaderError::File { file, .. }) => assert_eq!(file, cut),
        other => panic!("expected a file error, got {other:?}"),
    }
}
