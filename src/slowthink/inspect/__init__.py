"""Looking at what a search did: the search-tree viewer (``slowthink view``).

It reads traces and run folders and writes HTML; it never runs a model (docs/ARCHITECTURE.md,
"Search-tree viewer").
"""

from slowthink.inspect.load import load_views, record_views
from slowthink.inspect.page import render_page, write_page
from slowthink.inspect.tree import problem_view

__all__ = ["load_views", "problem_view", "record_views", "render_page", "write_page"]
