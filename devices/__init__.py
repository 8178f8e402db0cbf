"""Device profiles and example device apps (see docs)."""
