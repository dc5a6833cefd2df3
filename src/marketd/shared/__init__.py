"""Pure vocabularies every layer may import (the bottom layer of the import contract in
pyproject.toml): no I/O, and no imports of other marketd packages."""
