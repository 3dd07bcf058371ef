//! The zoo's tokenizer: GPT-2-style byte-level BPE with a small vocabulary, trained on the
//! synthetic corpus and saved as an ordinary HF `tokenizer.json`.
//!
//! Byte level, because later probe sets are general English, code and other languages:
//! all 256 bytes are in the vocabulary, so any UTF-8 text encodes without an unknown
//! token. The merges are learned by a small trainer here rather than the `tokenizers`
//! crate's `BpeTrainer`, whose parallel, hash-map based counting does not promise a
//! stable order: this one counts in `BTreeMap`s and breaks ties by the pair's text, so
//! the same corpus always yields byte-identical `tokenizer.json`.
//!
//! Ids: `0..256` are the bytes in byte order, then the merges in the order learned, then
//! the specials [`EOS`] (document separator) and [`PAD`].

use std::collections::BTreeMap;
use std::str::FromStr;

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, Tokenizer};

use crate::error::{Error, Result};

pub const EOS: &str = "<|endoftext|>";
pub const PAD: &str = "<|pad|>";

/// GPT-2's printable stand-in for each byte, as the byte-level pre-tokenizer maps them.
pub fn byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            b
        } else {
            extra += 1;
            255 + extra
        };
        out[b as usize] = char::from_u32(c).unwrap_or('\u{fffd}');
    }
    out
}

fn pre_tokenizer() -> ByteLevel {
    ByteLevel::new(false, true, true)
}

/// Learn byte-level BPE merges on `docs` until the vocabulary (bytes + merges + 2
/// specials) reaches `vocab_size`, or no pair occurs twice.
pub fn train(docs: &[String], vocab_size: usize) -> Result<Tokenizer> {
    if vocab_size < 258 {
        return Err(Error::input(
            "zoo tokenizer",
            format!("vocab_size {vocab_size} is below 258 (bytes + specials)"),
        ));
    }
    let pt = pre_tokenizer();
    let mut words: BTreeMap<String, u64> = BTreeMap::new();
    for doc in docs {
        let mut s = PreTokenizedString::from(doc.as_str());
        pt.pre_tokenize(&mut s).map_err(|e| Error::run(format!("pre-tokenizing the corpus: {e}")))?;
        for (w, _, _) in s.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            *words.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    let mut split: Vec<(Vec<String>, u64)> =
        words.into_iter().map(|(w, c)| (w.chars().map(String::from).collect(), c)).collect();
    let mut merges: Vec<(String, String)> = Vec::new();
    // Two merges can spell the same token ("a"+"bc", "ab"+"c"); it gets one id.
    let mut tokens: std::collections::BTreeSet<String> = byte_chars().iter().map(|c| c.to_string()).collect();
    while tokens.len() + 2 < vocab_size {
        let mut pairs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (syms, c) in &split {
            for p in syms.windows(2) {
                *pairs.entry((p[0].as_str(), p[1].as_str())).or_insert(0) += c;
            }
        }
        // Highest count; among equals the first in text order (strict `>` keeps it).
        let mut best: Option<((&str, &str), u64)> = None;
        for (p, c) in pairs {
            if best.is_none_or(|(_, bc)| c > bc) {
                best = Some((p, c));
            }
        }
        let Some(((a, b), count)) = best else { break };
        if count < 2 {
            break;
        }
        let (a, b) = (a.to_string(), b.to_string());
        for (syms, _) in &mut split {
            let mut i = 0;
            while i + 1 < syms.len() {
                if syms[i] == a && syms[i + 1] == b {
                    syms[i] = format!("{a}{b}");
                    syms.remove(i + 1);
                }
                i += 1;
            }
        }
        tokens.insert(format!("{a}{b}"));
        merges.push((a, b));
    }
    build(&merges)
}

/// Assemble the HF tokenizer from the learned merges, through its JSON form so the
/// result is exactly what `tokenizer.json` will hold.
fn build(merges: &[(String, String)]) -> Result<Tokenizer> {
    let mut vocab = serde_json::Map::new();
    for (i, c) in byte_chars().iter().enumerate() {
        vocab.insert(c.to_string(), i.into());
    }
    for (a, b) in merges {
        let next = vocab.len();
        vocab.entry(format!("{a}{b}")).or_insert(next.into());
    }
    let eos = vocab.len();
    vocab.insert(EOS.into(), eos.into());
    vocab.insert(PAD.into(), (eos + 1).into());
    let special = |id: usize, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false,
        "trim_offsets": true, "use_regex": true});
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(eos, EOS), special(eos + 1, PAD)],
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab,
            "merges": merges.iter().map(|(a, b)| serde_json::json!([a, b])).collect::<Vec<_>>(),
        }
    });
    Tokenizer::from_str(&json.to_string()).map_err(|e| Error::run(format!("building the zoo tokenizer: {e}")))
}

/// The `tokenizer.json` text, as the `tokenizers` crate writes it.
pub fn to_json(tok: &Tokenizer) -> Result<String> {
    tok.to_string(true).map_err(|e| Error::run(format!("serialising the zoo tokenizer: {e}")))
}

/// The id of a special token.
pub fn special_id(tok: &Tokenizer, token: &str) -> Result<u32> {
    tok.token_to_id(token).ok_or_else(|| Error::run(format!("tokenizer lacks special token {token}")))
}

/// Encode documents into one stream, each document followed by [`EOS`].
pub fn encode_stream(tok: &Tokenizer, docs: &[String]) -> Result<Vec<u32>> {
    let eos = special_id(tok, EOS)?;
    let mut out = Vec::new();
    for d in docs {
        let enc = tok.encode(d.as_str(), false).map_err(|e| Error::run(format!("encoding corpus: {e}")))?;
        out.extend_from_slice(enc.get_ids());
        out.push(eos);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<String> {
        crate::zoo::corpus::generate(1, 400)
    }

    #[test]
    fn training_is_deterministic_and_compresses() {
        let a = train(&docs(), 320).unwrap();
        let b = train(&docs(), 320).unwrap();
        assert_eq!(to_json(&a).unwrap(), to_json(&b).unwrap());
        assert_eq!(a.get_vocab_size(true), 320);
        let text = "Anna lives in Paris. The dog chased a red ball.";
        let ids = a.encode(text, false).unwrap().get_ids().to_vec();
        assert!(ids.len() * 4 < text.len() * 3, "{} tokens for {} bytes", ids.len(), text.len());
    }

    #[test]
    fn encodes_arbitrary_utf8_losslessly() {
        let tok = train(&docs(), 300).unwrap();
        for text in ["fn main() { println!(\"hi\"); }", "Grüße aus Köln — 東京 🚀", "\t\n  x"] {
            let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
            assert!(ids.iter().all(|&i| i < 300));
            assert_eq!(tok.decode(&ids, false).unwrap(), text);
        }
        assert_eq!(special_id(&tok, EOS).unwrap(), 298);
        assert_eq!(special_id(&tok, PAD).unwrap(), 299);
    }
}
