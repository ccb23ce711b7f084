"""The one :func:`load_model`: a local causal language model and its tokenizer.

:func:`load_model` loads the embedded model (:func:`embedded_model_path`, the
data shipped in :mod:`thermoscope.models`) or any other local transformers
causal LM directory (a real GPT-2 the user has, for example), after checking
that the folder holds one, and never touches the network. torch and
transformers are imported only when it is called. The CLI, the explorer and
the widgets all load through it.

Examples
--------
>>> embedded_model_path().name
'tiny-python-gpt2'
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from thermoscope.models import embedded_model_path

__all__ = ["embedded_model_path", "load_model"]

_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "spiece.model")


@contextmanager
def _quiet_loading(quiet: bool) -> Iterator[None]:
    """Hide transformers' "Loading weights" bar (restored afterwards) when ``quiet``.

    The embedded model loads in milliseconds, so its bar is only noise; a
    user's large model keeps it.
    """
    from transformers.utils import logging

    # transformers' logging helpers are untyped: one Any handle keeps mypy strict.
    hf_logging: Any = logging
    was_enabled = hf_logging.is_progress_bar_enabled()
    if quiet and was_enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was_enabled:
            hf_logging.enable_progress_bar()


def _bad(path: Path, why: str) -> ValueError:
    return ValueError(
        f"`model` must be a local transformers causal language model directory, "
        f"got '{path}' ({why})."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_causal_config(path: Path) -> None:
    """Raise unless ``path/config.json`` describes a model AutoModelForCausalLM can run."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _bad(path, f"config.json cannot be read: {first}") from None
    kind = config.model_type
    causal_classes = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    if kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise _bad(path, f"its model type '{kind}' has no causal language model head")
    if getattr(config, "is_encoder_decoder", False):
        raise _bad(path, f"its model type '{kind}' is an encoder-decoder, not a causal LM")
    # Encoder families (BERT, RoBERTa, ...) also list a causal head, but it is
    # only causal when the config says is_decoder=True; decoder-only families
    # never have a masked-LM head, so this test tells the two apart.
    if kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        raise _bad(path, f"its model type '{kind}' is an encoder (is_decoder is false)")
    architectures = getattr(config, "architectures", None) or []
    if architectures and not causal_classes.intersection(architectures):
        raise _bad(
            path,
            f"its architecture {', '.join(architectures)} is not a causal language model",
        )


def load_model(path: str | Path | None = None) -> tuple[Any, Any]:
    """Load a local causal language model and its tokenizer, ready for inference.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A directory written by ``save_pretrained`` (``config.json``, weights,
        tokenizer files) of a causal language model, for example a real GPT-2.
        Default: the embedded model (:func:`embedded_model_path`).

    Returns
    -------
    model : transformers.PreTrainedModel
        Loaded with ``AutoModelForCausalLM.from_pretrained(path,
        local_files_only=True)``, in eval mode.
    tokenizer : transformers.PreTrainedTokenizerBase
        Loaded with ``AutoTokenizer.from_pretrained(path, local_files_only=True)``.

    Raises
    ------
    ValueError
        Naming ``model`` when ``path`` does not exist, is not a directory, has
        no ``config.json``, describes a model that is not a causal LM (an
        encoder such as BERT, an encoder-decoder such as T5, a headless base
        model), lacks a tokenizer or ``.safetensors`` weights (pickled
        ``pytorch_model.bin`` weights are never loaded), or any of its files
        cannot be read (a truncated download, say).

    Notes
    -----
    Nothing is downloaded: every load uses ``local_files_only=True``, so the
    function works the same with ``HF_HUB_OFFLINE=1`` and without a network.

    Examples
    --------
    >>> model, tokenizer = load_model()
    >>> model.config.model_type, model.training
    ('gpt2', False)
    >>> tokenizer.decode(tokenizer("import os").input_ids)
    'import os'
    """
    folder = embedded_model_path() if path is None else Path(path)
    if not folder.exists():
        raise _bad(folder, "no such directory")
    if not folder.is_dir():
        raise _bad(folder, "a file, not a directory")
    if not (folder / "config.json").is_file():
        raise _bad(folder, "no config.json in it")
    _check_causal_config(folder)
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise _bad(folder, f"no tokenizer files in it ({', '.join(_TOKENIZER_FILES)})")

    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in folder.glob("*.bin")) + sorted(
            p.name for p in folder.glob("*.pt")
        )
        why = "no .safetensors weights in it"
        if pickled:
            why += (
                f"; {', '.join(pickled)} would need pickle, which is never loaded (convert "
                "once with model.save_pretrained(folder, safe_serialization=True))"
            )
        raise _bad(folder, why)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Any failure inside a user's folder (a truncated file raises safetensors'
    # own error, a broken tokenizer its library's) is a bad `model`, one line.
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:
        raise _bad(folder, f"its tokenizer cannot be loaded: {_first_line(exc)}") from None
    try:
        with _quiet_loading(path is None):
            model: Any = AutoModelForCausalLM.from_pretrained(
                folder, local_files_only=True, use_safetensors=True
            )
    except Exception as exc:
        raise _bad(folder, f"its weights cannot be loaded: {_first_line(exc)}") from None
    model.eval()
    return model, tokenizer
