"""The REST API's shared pieces: auth, permissions, errors, pagination, idempotency, throttling, schema."""
