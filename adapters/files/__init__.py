"""Local disk: a directory of files, durable writes (fsync) and the api's file-writer process."""
