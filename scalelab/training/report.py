"""A finished run's summary as a terminal table (the end of `scalelab train`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from scalelab.core.human_count import human_count


def print_summary(s: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"run {s['run_id']}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("data", f"{s['scale']} of {s['corpus']}: D = {s['unique_tokens']:,} unique tokens"),
        ("model", f"{s['model']} (L{s['n_layer']}{'' if s['n_head'] is None else ' H' + str(s['n_head'])} d{s['d_model']}): "
                  f"N = {human_count(s['params'])} all, {human_count(s['params_non_embedding'])} non-embedding"),
        ("trained", f"{s['steps']:,} steps, {s['tokens_seen']:,} tokens, {s['epochs']:.2f} epochs, "
                    f"{s['flops']:.3g} FLOPs"),
        ("val loss", f"final {s['final_val_loss']:.4f}, best {s['best_val_loss']:.4f} "
                     f"({s['val_tokens']:,} {'masked tokens' if s.get('objective') == 'masked_lm' else 'tokens'})"),
        ("train loss", f"{s['final_train_loss']:.4f} (last 10 steps)"),
        ("speed", (f"{s['tokens_per_s']:,.0f} tokens/s" if s["tokens_per_s"] else "-")
                  + f", {s['wall_time_s']:.1f}s wall"),
        ("DeepSpeed", f"ZeRO-{s['zero_stage']}, {s['precision']}, {s['world_size']} processes"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
