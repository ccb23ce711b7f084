"""The embedded language model's data: ``tiny-python-gpt2``.

thermoscope ships one small model inside the package, ``tiny-python-gpt2``: a
GPT-2-architecture causal language model (4 layers, 160 wide, about 1.9
million parameters, a 4096-token byte-level BPE vocabulary, 256-token
context) trained by ``scripts/train_tiny_lm.py`` on the Python standard
library's own source files. It is a plain ``save_pretrained`` folder, so
``transformers.AutoModelForCausalLM.from_pretrained(embedded_model_path())``
loads it like any model; ``training.json`` in the folder records how it was
trained and its validation loss.

This package only locates the data; :func:`thermoscope.generation.load_model`
loads it (or any other local causal LM) with its checks.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["EMBEDDED_MODEL", "embedded_model_path"]

#: Folder name of the embedded model inside this package.
EMBEDDED_MODEL = "tiny-python-gpt2"


def embedded_model_path() -> Path:
    """The folder of the model shipped inside thermoscope.

    Returns
    -------
    pathlib.Path
        A directory with ``config.json``, ``model.safetensors``, the tokenizer
        files, ``generation_config.json`` and ``training.json``.

    Examples
    --------
    >>> path = embedded_model_path()
    >>> path.name, (path / "config.json").is_file()
    ('tiny-python-gpt2', True)
    """
    # thermoscope is installed as files on disk (transformers needs a real
    # directory anyway), so the resource is a concrete path, never a zip member.
    return Path(str(files(__name__).joinpath(EMBEDDED_MODEL)))
