#!/usr/bin/env python3
"""Reference values for the Rust BERT backend, from the Python peers.

Writes harness/tests/fixtures/minilm_reference.json:
  - token ids of each sentence from the HF (fast) tokenizer,
  - the first 16 dims of each sentence-transformers embedding (mean pooling + L2 norm),
  - the full cosine matrix of those embeddings,
  - for sentence 0, the L2 norm of the mean-pooled hidden state at every residual position
    (embedding output, then each layer) from transformers with output_hidden_states=True.

Not run in CI. Usage (venv with torch, transformers, sentence-transformers):
  /tmp/peers-venv/bin/python benches/peers/minilm_reference.py [MODEL_DIR]
MODEL_DIR defaults to $GAPBENCH_MINILM_DIR, else ~/.cache/gapbench/models/all-minilm-l6-v2.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

# Different lengths (3 to ~70 tokens), casing, punctuation, digits, accents and a word split
# into several word pieces, so tokenization and padding both get exercised.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hi!",
    "A model substitution attack swaps the weights an agent runs on without changing its credentials.",
    "Café owners in Zürich reported 42 unexpected deliveries on Tuesday, according to the regional newspaper.",
    "Embeddings.",
    "Large language models compress long conversations into summaries, and the obligations stated "
    "early in a conversation are sometimes lost when the context window is compressed; measuring "
    "that loss requires probes that are sensitive to small semantic differences between otherwise "
    "similar texts.",
]


def main() -> None:
    default = os.environ.get("GAPBENCH_MINILM_DIR") or str(
        Path.home() / ".cache/gapbench/models/all-minilm-l6-v2"
    )
    model_dir = sys.argv[1] if len(sys.argv) > 1 else default
    torch.manual_seed(0)
    torch.set_grad_enabled(False)

    st = SentenceTransformer(model_dir, device="cpu")
    emb = st.encode(SENTENCES, batch_size=len(SENTENCES), convert_to_numpy=True, normalize_embeddings=False)
    emb = emb.astype(np.float64)
    cosine = emb @ emb.T

    tok = AutoTokenizer.from_pretrained(model_dir)
    token_ids = [tok(s)["input_ids"] for s in SENTENCES]
    assert all(len(t) <= 128 for t in token_ids), "keep sentences under every truncation limit"

    model = AutoModel.from_pretrained(model_dir).eval()
    ids = torch.tensor([token_ids[0]])
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    layer_norms = [float(h[0].mean(dim=0).norm()) for h in out.hidden_states]

    fixture = {
        "generated_by": "benches/peers/minilm_reference.py",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
        "sentences": SENTENCES,
        "token_ids": token_ids,
        "embedding_head": [[float(x) for x in e[:16]] for e in emb],
        "embedding_norms": [float(np.linalg.norm(e)) for e in emb],
        "cosine": [[float(x) for x in row] for row in cosine],
        "layer_mean_norms_sentence0": layer_norms,
    }
    dest = Path(__file__).resolve().parents[2] / "harness/tests/fixtures/minilm_reference.json"
    # One top-level key per line keeps the committed file small and its diffs readable.
    body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in fixture.items())
    dest.write_text("{\n" + body + "\n}\n", encoding="utf-8")
    print(f"wrote {dest}: {len(SENTENCES)} sentences, token lengths {[len(t) for t in token_ids]}")


if __name__ == "__main__":
    main()
