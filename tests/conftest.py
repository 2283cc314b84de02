"""Make this checkout importable as ``ansible_collections.ocireg.registry``.

Module utils import each other by their fully qualified collection path (that
is what Ansible's module packer follows), so the tests need the same name.
When the checkout already lives in ``.../ansible_collections/ocireg/registry``
that path is used; otherwise a symlink tree in a temp dir stands in for it.
"""
from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

COLLECTION_ROOT = Path(__file__).resolve().parent.parent


def _collections_path() -> Path:
    parts = COLLECTION_ROOT.parts
    if len(parts) >= 3 and parts[-3] == "ansible_collections" and parts[-2:] == ("ocireg", "registry"):
        return COLLECTION_ROOT.parent.parent.parent
    tmp = Path(tempfile.mkdtemp(prefix="ocireg-collections-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    (tmp / "ansible_collections" / "ocireg").mkdir(parents=True)
    (tmp / "ansible_collections" / "ocireg" / "registry").symlink_to(COLLECTION_ROOT)
    return tmp


COLLECTIONS_PATH = _collections_path()
if str(COLLECTIONS_PATH) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_PATH))
# Drop any ansible_collections package imported before the path was set.
for _name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
    del sys.modules[_name]
