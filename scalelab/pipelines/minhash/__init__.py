"""MinHash-LSH near-duplicate removal: signatures, banding, candidate pairs, connected components."""
