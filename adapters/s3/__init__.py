"""S3-compatible object storage (AWS S3, MinIO, Ceph, moto): a bucket behind the same ports as the local disk."""
