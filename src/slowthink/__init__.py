"""slowthink."""
