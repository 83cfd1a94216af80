import sys

# optional jsonschema format helper; its import takes about 2 s and nothing here needs it
sys.modules.setdefault("rfc3987_syntax", None)

from .cli import main  # noqa: E402 (after the line above on purpose)

sys.exit(main())
