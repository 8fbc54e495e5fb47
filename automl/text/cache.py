"""What the encoder computes once per run, and how trials and predictors read text.

In the host process (`prepare_text`, called by the tabular pipeline's `prepare`): every text column is
tokenized at each searched maximum length, and the frozen encoder runs once over every row:

- `text.pooled.<length>.<pooling>` (rows, columns, dim): the pooled output a frozen trial reads, so trials
  that do not fine-tune pay nothing for the encoder;
- `text.hidden` (tokens, dim): the token states entering the lowest adapted layer, packed row after row
  (`text.start.<length>` says where each row's tokens begin), so a fine-tuning trial runs only the layers it
  adapts. A row whose text fits in a shorter length has the same tokens at every length, so it is encoded
  and stored once, at the longest; shorter lengths re-encode only the rows they truncate;
- `text.ids.<length>` / `text.len.<length>`: the tokens themselves, for fine-tuning without that cache.

These are arrays of `Prepared`: they travel to the search workers with the rest of the prepared data (never
into the run directory) and `DeviceText` moves them to the training device once. At prediction time
`TokenText` tokenizes raw rows and the model runs its encoder itself (`automl.text.networks`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd
    import torch

    from automl.config import RunConfig
    from automl.pipeline import Prepared
    from automl.text.encoder import Encoder

log = logging.getLogger(__name__)

#: Largest token-state cache kept for fine-tuning trials (bytes); past it they run the frozen layers each step.
HIDDEN_CACHE_BYTES = 1 << 30
#: Rows a text model scores at once (token states of a few hundred rows, not of thousands).
TEXT_EVAL_ROWS = 512
#: What `text.adapt: null` searches on a GPU.
GPU_ADAPT = ("frozen", "top1", "top2")


class TextRequest(NamedTuple):
    """What a text model reads: the maximum length, the pooling, and how many top layers it adapts (0: frozen)."""

    length: int
    pooling: str
    adapt: int


@dataclass
class TextBatch:
    """Text inputs of a batch of rows, in one of three forms (each (rows, columns, ...)):
    `pooled` (frozen: the encoder's pooled output), `hidden` + `mask` (token states entering layer `first`),
    or `ids` + `lengths` (tokens: the model runs its whole encoder)."""

    pooled: Optional["torch.Tensor"] = None
    hidden: Optional["torch.Tensor"] = None
    mask: Optional["torch.Tensor"] = None
    first: int = 0
    ids: Optional["torch.Tensor"] = None
    lengths: Optional["torch.Tensor"] = None

    def get(self, request: TextRequest) -> "TextBatch":
        return self


@dataclass
class PreparedText:
    """The host's share of text preparation: arrays for `Prepared`, the searched choices, the predictor's state."""

    arrays: dict[str, "np.ndarray"]
    columns: list[str]
    lengths: tuple[int, ...]
    adapt: tuple[str, ...]
    pooling: tuple[str, ...]
    #: The layer whose input states are cached (0: the embeddings' output), or None.
    cut: Optional[int]
    encoder: "Encoder"
    state: dict[str, Any] = field(default_factory=dict)


def adapt_depth(adapt: str) -> int:
    """"frozen" -> 0, "top2" -> 2."""
    return 0 if adapt == "frozen" else int(adapt[3:])


def texts_of(series: "pd.Series") -> list[str]:
    """A column's values as text: a missing value is the empty text, anything else its string."""
    import pandas as pd

    return ["" if (v is None or (not isinstance(v, str) and pd.isna(v))) else str(v) for v in series.tolist()]


#: The last encoding of this process: the report re-derives a run's test rows in the process that ran it, and a
#: benchmark searches the same texts several ways; the same texts must not be encoded twice.
_LAST: dict[str, PreparedText] = {}


def prepare_text(frame: "pd.DataFrame", cfg: "RunConfig", encoder_path: Any) -> PreparedText:
    """Tokens and the encoder's outputs for every row of `frame` (the text columns), at every searched length."""
    import dataclasses
    import hashlib
    import json

    from automl.text.encoder import load_encoder
    from automl.training.device import choose_device
    from automl.training.engine import torch_threads

    encoder = load_encoder(encoder_path)
    device = choose_device(cfg.trainer.accelerator)
    adapt = _adapt_choices(cfg, encoder, device)
    deepest = max(adapt_depth(a) for a in adapt)
    cut = encoder.n_layers - deepest if deepest and encoder.layerwise else None
    columns = list(frame.columns)
    texts = [texts_of(frame[c]) for c in columns]
    digest = hashlib.sha256(json.dumps([str(encoder.path), columns, cfg.text.max_lengths, cfg.text.pooling,
                                        device.type]).encode())
    for column in texts:
        digest.update("\x1f".join(column).encode("utf-8", "surrogatepass"))
    key = digest.hexdigest()
    done = _LAST.get(key)
    if done is None or (cut is not None and not done.state.get("too_large") and (done.cut is None or done.cut > cut)):
        _LAST.clear()
        with torch_threads(cfg.trainer.threads):
            done = _LAST[key] = _encode_all(columns, texts, cfg, encoder, device, cut)
    arrays = done.arrays
    if cut is None and done.cut is not None:  # frozen trials only: the token states stay out of the job
        arrays = {k: v for k, v in arrays.items() if k != "text.hidden"}
    kept = done.cut if cut is not None else None
    return dataclasses.replace(done, arrays=arrays, adapt=adapt, cut=kept, state={**done.state, "cut": kept})


def _adapt_choices(cfg: "RunConfig", encoder: "Encoder", device: "torch.device") -> tuple[str, ...]:
    """`text.adapt`, or its default for the device, less what the encoder has too few layers for."""
    wanted = cfg.text.adapt
    if wanted is None:
        wanted = list(GPU_ADAPT) if device.type == "cuda" else ["frozen"]
        if device.type != "cuda":
            log.info("text: the encoder stays frozen on a CPU (fine-tuning costs minutes an epoch there); "
                     "text.adapt=[frozen,top1,top2] searches fine-tuning too")
    adapt = tuple(a for a in dict.fromkeys(wanted) if adapt_depth(a) <= encoder.n_layers)
    if len(adapt) < len(set(wanted)):
        log.warning("text.adapt: %s has %d layers, so %s are left out of the search", encoder.name, encoder.n_layers,
                    ", ".join(a for a in wanted if a not in adapt))
    return adapt or ("frozen",)


def _encode_all(columns: list[str], texts: list[list[str]], cfg: "RunConfig", encoder: "Encoder",
                device: "torch.device", cut: Optional[int]) -> PreparedText:
    import numpy as np
    import torch

    started = time.perf_counter()
    n, n_cols = len(texts[0]) if texts else 0, len(columns)
    cap = min(max(cfg.text.max_lengths), encoder.max_positions)
    full = [encoder.tokenize(t, cap) for t in texts]  # the longest truncation: each row's length up to the cap
    longest = int(max(int(lens.max()) for _, lens in full)) if n else 2
    lengths = tuple(sorted({min(int(c), longest, encoder.max_positions) for c in cfg.text.max_lengths}))
    too_large = False
    if cut is not None:
        tokens = _cached_tokens(full, lengths)
        if tokens * encoder.dim * 4 > HIDDEN_CACHE_BYTES:
            log.info("text: caching the token states of %s tokens would take %.1f GB (more than %.1f): fine-tuning "
                     "trials run the frozen layers at every step", f"{tokens:,}", tokens * encoder.dim * 4 / 1e9,
                     HIDDEN_CACHE_BYTES / 1e9)
            cut, too_large = None, True
    encoder.to(device)
    arrays: dict[str, np.ndarray] = {}
    poolings = tuple(dict.fromkeys(cfg.text.pooling))
    for length in lengths:
        arrays[f"text.ids.{length}"] = np.zeros((n, n_cols, length), dtype=np.int32)
        arrays[f"text.len.{length}"] = np.zeros((n, n_cols), dtype=np.int32)
        arrays[f"text.start.{length}"] = np.zeros((n, n_cols), dtype=np.int64)
        for pooling in poolings:
            arrays[f"text.pooled.{length}.{pooling}"] = np.zeros((n, n_cols, encoder.dim), dtype=np.float32)
    store: list[np.ndarray] = []
    offset, encoded = 0, 0
    for j, column in enumerate(columns):
        full_len = full[j][1]
        for step, length in enumerate(sorted(lengths, reverse=True)):
            # no row of this column is longer: the tokens at the cap are the tokens at this length
            ids, lens = (full[j][0][:, :length], full[j][1]) if int(full_len.max(initial=0)) <= length \
                else encoder.tokenize(texts[j], length)
            arrays[f"text.ids.{length}"][:, j], arrays[f"text.len.{length}"][:, j] = ids, lens
            # at a shorter length only the rows it truncates differ from the longest: those alone are encoded
            need = np.arange(n) if step == 0 else np.flatnonzero(full_len > length)
            longest_len = max(lengths)
            if step:
                same = np.setdiff1d(np.arange(n), need)
                arrays[f"text.start.{length}"][same, j] = arrays[f"text.start.{longest_len}"][same, j]
                for pooling in poolings:
                    arrays[f"text.pooled.{length}.{pooling}"][same, j] = \
                        arrays[f"text.pooled.{longest_len}.{pooling}"][same, j]
            if not len(need):
                continue
            pooled, packed, starts = _encode(encoder, ids, lens, need, poolings, cut, cfg.text.batch_size, device)
            for pooling in poolings:
                arrays[f"text.pooled.{length}.{pooling}"][need, j] = pooled[pooling]
            if packed is not None:
                arrays[f"text.start.{length}"][need, j] = starts + offset
                store.append(packed)
                offset += len(packed)
            encoded += int(lens[need].sum())
    if cut is not None:
        arrays["text.hidden"] = np.concatenate(store) if store else np.zeros((0, encoder.dim), dtype=np.float32)
    seconds = time.perf_counter() - started
    log.info("text: %s read by %s (%s, %d layers, hidden size %d) from %s; %s tokens encoded once at max length(s) "
             "%s in %.1f s on %s%s", ", ".join(columns), encoder.name, "frozen, cached", encoder.n_layers, encoder.dim,
             encoder.path, f"{encoded:,}", ", ".join(map(str, lengths)), seconds, device.type,
             f"; token states entering layer {cut + 1} cached for fine-tuning "
             f"({arrays['text.hidden'].nbytes / 1e6:.0f} MB)" if cut is not None else "")
    del torch
    state = {"columns": columns, "encoder": str(encoder.path), "name": encoder.name, "cut": cut,
             "too_large": too_large}
    return PreparedText(arrays=arrays, columns=columns, lengths=lengths, adapt=(), pooling=poolings, cut=cut,
                        encoder=encoder, state=state)


def _cached_tokens(full: list[tuple["np.ndarray", "np.ndarray"]], lengths: tuple[int, ...]) -> int:
    """Token states the fine-tuning cache would hold: every row at the longest length, plus the truncated rows
    at each shorter one."""
    total = 0
    for _, lens in full:
        top = max(lengths)
        total += int(lens.clip(max=top).sum())
        total += sum(int((lens > n).sum()) * n for n in lengths if n < top)
    return total


def _encode(encoder: "Encoder", ids: "np.ndarray", lens: "np.ndarray", rows: "np.ndarray", poolings: tuple[str, ...],
            cut: Optional[int], batch_size: int, device: "torch.device") -> tuple[dict, Any, Any]:
    """The pooled outputs of `rows` (in `rows` order) and, with `cut`, their token states entering layer `cut`,
    packed (tokens, dim), with each row's first token's position in the pack."""
    import numpy as np
    import torch

    order = rows[np.argsort(lens[rows], kind="stable")]  # similar lengths together: little padding
    position = {int(r): i for i, r in enumerate(rows)}
    pooled = {p: np.zeros((len(rows), encoder.dim), dtype=np.float32) for p in poolings}
    packs, starts, offset = [], np.zeros(len(rows), dtype=np.int64), 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = int(lens[chunk].max())
            b_ids = torch.as_tensor(ids[chunk, :width], device=device)
            b_len = torch.as_tensor(lens[chunk], device=device)
            mask = torch.arange(width, device=device) < b_len.unsqueeze(1)
            if cut is None:
                last = encoder.hidden_states(b_ids, b_len)
            else:
                states = encoder.hidden_states(b_ids, b_len, all_layers=True)
                last = states[-1]
                packs.append(states[cut][mask].float().cpu().numpy())
            at = [position[int(r)] for r in chunk]
            for p in poolings:
                pooled[p][at] = encoder.pool(last, mask, p).float().cpu().numpy()
            if cut is not None:
                counts = lens[chunk].astype(np.int64)
                starts[at] = offset + np.concatenate([[0], np.cumsum(counts)[:-1]])
                offset += int(counts.sum())
    packed = np.concatenate(packs) if packs else None
    return pooled, packed, starts


# -- where trials run ---------------------------------------------------------------------------------------


class DeviceText:
    """The prepared text arrays on the training device (moved once) and the batches text models read."""

    def __init__(self, prepared: "Prepared", device: "torch.device") -> None:
        import torch

        info = prepared.info
        self.cut: Optional[int] = prepared.state["text"].get("cut")
        self.n_layers = int(info.text_layers)
        self.tensors = {k: torch.as_tensor(v, device=device) for k, v in prepared.arrays.items()
                        if k.startswith("text.")}

    def get(self, idx: "torch.Tensor", request: TextRequest) -> TextBatch:
        import torch

        t, length = self.tensors, request.length
        if request.adapt == 0:
            return TextBatch(pooled=t[f"text.pooled.{length}.{request.pooling}"][idx])
        lens = t[f"text.len.{length}"][idx]  # (rows, columns)
        width = int(lens.max()) if lens.numel() else 1
        steps = torch.arange(width, device=lens.device)
        mask = steps < lens.unsqueeze(-1)
        if self.cut is not None and self.cut <= self.n_layers - request.adapt:
            store = t["text.hidden"]
            where = (t[f"text.start.{length}"][idx].unsqueeze(-1) + steps).clamp(max=max(len(store) - 1, 0))
            return TextBatch(hidden=store[where] * mask.unsqueeze(-1), mask=mask, first=self.cut)
        return TextBatch(ids=t[f"text.ids.{length}"][idx][..., :width], lengths=lens)


class RowsText:
    """The text of some prepared rows, in the form each model asks for (`get(request)`)."""

    def __init__(self, text: DeviceText, idx: "torch.Tensor") -> None:
        self.text, self.idx = text, idx

    def get(self, request: TextRequest) -> TextBatch:
        return self.text.get(self.idx, request)


# -- prediction on raw rows -----------------------------------------------------------------------------------


class TokenText:
    """Raw texts (one list per text column), tokenized at the length each model asks for."""

    def __init__(self, encoder: "Encoder", texts: list[list[str]], device: Any = None) -> None:
        self.encoder, self.texts, self.device = encoder, texts, device
        self._tokens: dict[int, TextBatch] = {}

    def get(self, request: TextRequest) -> TextBatch:
        import numpy as np
        import torch

        if request.length not in self._tokens:
            pairs = [self.encoder.tokenize(t, request.length) for t in self.texts]
            lens = np.stack([p[1] for p in pairs], axis=1)
            width = int(lens.max()) if lens.size else 1
            ids = np.stack([p[0][:, :width] for p in pairs], axis=1)
            self._tokens[request.length] = TextBatch(ids=torch.as_tensor(ids, device=self.device),
                                                     lengths=torch.as_tensor(lens, device=self.device))
        return self._tokens[request.length]


# -- one embedding per text, for plugins (the recommendation domain's content tower) --------------------------


def embed_texts(texts: list[str], cfg: "RunConfig", pooling: str = "mean", max_length: int = 64,
                purpose: str = "the text", optional: bool = False) -> Optional["np.ndarray"]:
    """The frozen encoder's pooled output for each text, (texts, dim) float32: `text.encoder`'s folder, or the
    shipped all-MiniLM-L6-v2. With none installed: a `ConfigError` that says what to install, or, when
    `optional`, None and one log line that `purpose` is off."""
    import numpy as np

    from automl.errors import ConfigError
    from automl.text.encoder import load_encoder, missing_encoder_hint, resolve_encoder
    from automl.training.device import choose_device
    from automl.training.engine import torch_threads

    path = resolve_encoder(cfg.text.encoder)
    if path is None:
        if optional:
            log.warning("text: no text encoder is installed, so %s is off: %s", purpose, missing_encoder_hint())
            return None
        raise ConfigError(f"{purpose} needs a text encoder, and none is installed: {missing_encoder_hint()}")
    started = time.perf_counter()
    encoder = load_encoder(path)
    device = choose_device(cfg.trainer.accelerator)
    encoder.to(device)
    ids, lens = encoder.tokenize([str(t) for t in texts], min(max_length, encoder.max_positions))
    with torch_threads(cfg.trainer.threads):
        pooled, _, _ = _encode(encoder, ids, lens, np.arange(len(texts)), (pooling,), None, cfg.text.batch_size,
                               device)
    log.info("text: %d texts embedded by %s (%s pooling, up to %d tokens) in %.1f s", len(texts), encoder.name,
             pooling, ids.shape[1], time.perf_counter() - started)
    return pooled[pooling]
