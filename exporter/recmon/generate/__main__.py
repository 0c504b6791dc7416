import sys
from pathlib import Path

from recmon.generate import write_all

root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
for path in write_all(root):
    print(f"wrote {path}")
