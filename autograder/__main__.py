import sys

sys.modules.setdefault("rfc3987_syntax", None)  # optional jsonschema format helper; its import takes ~2 s


from .cli import main

sys.exit(main())
