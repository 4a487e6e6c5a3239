"""The shapes world: a procedural video world, its exact scorer and a small model trained on it."""
