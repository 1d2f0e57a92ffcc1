"""The push secret file, read by the DB manager (to verify), the controllers and local mode (to sign)."""
