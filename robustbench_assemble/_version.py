import functools
import hashlib
from pathlib import Path

__version__ = "0.1.0"


@functools.cache
def code_fingerprint() -> str:
    """16 hex of the package's Python sources. Why: caches of evaluated cells are keyed by it,
    so a changed loader, transform or metric never reuses numbers the old code computed (the
    version string does not change between commits)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]
