"""Pixels and containers: the WebP codec, header reads, MP4/MOV and SVG checks, the conversion process pool."""
