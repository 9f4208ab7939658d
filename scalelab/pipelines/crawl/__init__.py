"""The crawler: seed URLs fetched politely into WARC files that `scalelab corpus build` reads."""
