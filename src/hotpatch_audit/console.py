"""The command line's two consoles (one home, shared by every CLI module)."""

from __future__ import annotations

from rich.console import Console

# Messages carry paths and Azure text: never wrapped mid-word (soft_wrap), never highlighted. Callers
# pass untrusted text through rich.markup.escape so it is never read as markup.
err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console()
