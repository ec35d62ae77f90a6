"""``python -m azure_edition_operator.plugin``: the same as ``kubectl aevm``."""

from .main import main

raise SystemExit(main())
