"""S3-compatible object storage (AWS S3, MinIO, Ceph, moto): a blob store behind the same port as the local disk."""
