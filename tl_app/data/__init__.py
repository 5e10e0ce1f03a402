"""Data helpers every family shares: in-memory arrays, class folders, seeded splits, tfds that fails fast offline."""
