"""Run a package's golden prompts in whatever onnxruntime-genai this interpreter has (no project imports:
it runs in an isolated venv holding only an older onnxruntime-genai). Prints one JSON object: the version and,
per prompt, whether the greedy tokens equal the golden ones (the CPU provider, as `aipc check --device CPU`)."""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime_genai as og

package = Path(sys.argv[1])
config = og.Config(str(package))
config.clear_providers()  # the graph's own providers (dml) replaced by the CPU EP
model = og.Model(config)
cfg = json.loads((package / "genai_config.json").read_text())
eos = cfg["model"]["eos_token_id"]
eos = set(eos if isinstance(eos, list) else [eos])
results = []
for line in (package / "golden_outputs.jsonl").read_text().splitlines():
    row = json.loads(line)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(row["input_ids"]) + row["max_new_tokens"])
    gen = og.Generator(model, params)
    gen.append_tokens(np.array(row["input_ids"], dtype=np.int32))
    tokens = []
    while not gen.is_done() and len(tokens) < row["max_new_tokens"]:
        gen.generate_next_token()
        tok = int(gen.get_next_tokens()[0])
        if tok in eos:
            break
        tokens.append(tok)
    results.append(tokens == row["output_ids"])
print(json.dumps({"version": og.__version__, "matches": results}))
