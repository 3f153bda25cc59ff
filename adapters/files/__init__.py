"""Local disk: the blob store, durable writes (fsync) and the api's file-writer process."""
