"""Identity of a model folder's current contents, for keeping a loaded model between calls.

Loading a model (and, on JAX, compiling its sampler) costs seconds; the generators keep the last
one they loaded, keyed by this. A folder rewritten in place (another tokenizer, new weights) gets
a new key and is loaded again. Hashing every file would cost as much as loading, so the key is each
file's name, size and modification time (nanoseconds).
"""

from __future__ import annotations

from pathlib import Path


def folder_key(model_dir: Path) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    """(resolved path, sorted (file name, size, mtime_ns) of its files)."""
    model_dir = Path(model_dir).resolve()
    files = sorted((p.name, st.st_size, st.st_mtime_ns)
                   for p in model_dir.iterdir() if p.is_file() for st in (p.stat(),))
    return str(model_dir), tuple(files)
