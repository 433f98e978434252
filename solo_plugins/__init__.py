"""solo-plugins."""
