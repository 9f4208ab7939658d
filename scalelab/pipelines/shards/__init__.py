"""Token shards: tokenizer, validation split, decontamination, scales, Arrow IPC shards, manifest."""
