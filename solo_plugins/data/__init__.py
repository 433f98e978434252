"""Offline datasets exported to solo-learn's custom image-folder layout, and small-image
evaluation transforms for them."""
