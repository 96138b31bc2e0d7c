"""Device events (GLI-31 significant events) on the server: stored from sync batches, listed by admins."""
