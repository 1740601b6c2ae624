"""The numpy MiniLM forward pass (what the CLI and the daemon run) against ``transformers``' ``BertModel`` on
the same cached weights: same embeddings, to float precision."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ally.text import resources as R

pytestmark = pytest.mark.real_models

SENTENCES = ["A man is playing a guitar.", "Just hit the big 3-0 and honestly my knees hurt",
             "ok", "The Boise YMCA pool is closed again!!! Swimming at the river instead lol"]


def test_numpy_forward_matches_transformers_bert(real_model):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from ally.text.embed import MiniLM

    files = real_model(R.MINILM_MODEL)
    ours = MiniLM.from_files(files).encode(SENTENCES)

    cfg = transformers.BertConfig.from_dict(json.loads(files["config.json"].read_text()))
    bert = transformers.BertModel(cfg, add_pooling_layer=False).eval()
    from safetensors.torch import load_file

    bert.load_state_dict({k.removeprefix("bert."): v for k, v in load_file(str(files["model.safetensors"])).items()
                          if not k.startswith("pooler.")}, strict=False)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(files["tokenizer.json"]))
    tok.no_padding()  # tokenizer.json pads to a fixed length
    ref = []
    with torch.inference_mode():
        for s in SENTENCES:
            ids = torch.tensor([tok.encode(s).ids])
            x = bert(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
            v = x.last_hidden_state.mean(1)[0]
            ref.append((v / v.norm()).numpy())
    ref = np.stack(ref)
    assert ours.shape == ref.shape == (4, 384)
    assert np.abs(ours - ref).max() < 1e-4, np.abs(ours - ref).max(1)
    # batching with padding gives the same vectors as one at a time
    one = np.stack([MiniLM.from_files(files).encode([s])[0] for s in SENTENCES])
    assert np.abs(one - ours).max() < 1e-5
