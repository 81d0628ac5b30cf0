"""Every file ministeer reads or writes, in one place.

* ``atomic``: the one atomic writer every file goes through (temporary, fsync, rename).
* ``arrays``: named arrays plus JSON metadata as ``.safetensors`` or ``.npz`` (no pickle, a
  SHA-256 checked on load, sizes checked before memory), and a model file (params + ``Config``).
* ``state``: training-state checkpoints, everything ``fit`` needs to resume bitwise.
* ``hf``: local Hugging Face folders (``LlamaForCausalLM``, ``GPT2LMHeadModel``).
* ``adapters``: adapter files (``adapters.save_adapters`` wraps them with the method's checks).

Format tags read ``ministeer.<what>/<version>``. What is promised: docs/guarantees.md.
"""
from .adapters import load_adapter_file, save_adapter_file
from .arrays import (CheckpointError, check_arrays, config_from_dict, load_arrays, load_model, read_safetensors,
                     save_arrays, save_model, write_safetensors)
from .atomic import atomic_write, remove_stale_temporaries, write_json_atomic, write_text_atomic
from .hf import load_pretrained, save_pretrained
from .state import latest_checkpoint, list_checkpoints, load_state, resolve_resume, save_state

__all__ = ["CheckpointError", "atomic_write", "check_arrays", "config_from_dict", "latest_checkpoint",
           "list_checkpoints", "load_adapter_file", "load_arrays", "load_model", "load_pretrained", "load_state",
           "read_safetensors", "remove_stale_temporaries", "resolve_resume", "save_adapter_file", "save_arrays",
           "save_model", "save_pretrained", "save_state", "write_json_atomic", "write_safetensors",
           "write_text_atomic"]
