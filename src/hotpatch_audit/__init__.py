"""hotpatch-audit: compliance audits for Windows Server hotpatch."""

from __future__ import annotations

__version__ = "0.1.0"
