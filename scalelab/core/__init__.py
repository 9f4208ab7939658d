"""The ground floor: what every other part of scalelab stands on (config loading, the Ray session,
provenance, atomic writes, build units, the shard format and manifest, counts for people)."""
