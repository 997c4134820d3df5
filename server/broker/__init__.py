"""The message broker's domain: topics, partitions, idempotent producers. No gRPC here."""
