"""The build's accounting as terminal tables (`scalelab corpus stats`, and the end of a build)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from scalelab.pipelines.stats import BuildStats, human_bytes


def print_stats(stats: BuildStats, console: Console | None = None, title: str = "corpus build") -> None:
    console = console or Console()
    n_in = max(1, stats.documents_in)
    table = Table(title=f"{title}: where every document went", title_justify="left")
    for col, justify in (("stage", "left"), ("reason", "left"), ("documents", "right"),
                         ("% of input", "right"), ("bytes", "right")):
        table.add_column(col, justify=justify)
    table.add_row("input", "", f"{stats.documents_in:,}", "100.0%", human_bytes(stats.bytes_in), style="bold")
    for d in stats.drops:
        table.add_row(d["stage"], d["reason"], f"{d['documents']:,}",
                      f"{100 * d['documents'] / n_in:.1f}%", human_bytes(d["bytes"]))
    table.add_row("output", "kept", f"{stats.documents_kept:,}", f"{100 * stats.documents_kept / n_in:.1f}%",
                  human_bytes(stats.bytes_kept), style="bold green")
    console.print(table)
    ok = "holds" if stats.balanced() else "DOES NOT HOLD"
    console.print(f"in = kept + dropped: {stats.documents_in:,} = {stats.documents_kept:,} + "
                  f"{stats.documents_dropped:,} ({ok}); kept text: {human_bytes(stats.text_bytes_kept)}")

    if stats.languages:
        langs = Table(title="kept documents by language", title_justify="left")
        for col, justify in (("lang", "left"), ("documents", "right"), ("text", "right")):
            langs.add_column(col, justify=justify)
        for lang, v in sorted(stats.languages.items(), key=lambda kv: -kv[1]["text_bytes"]):
            langs.add_row(lang, f"{v['documents']:,}", human_bytes(v["text_bytes"]))
        console.print(langs)
    if stats.redactions:
        parts = [f"{k}: {v['count']:,} in {v['documents']:,} docs" for k, v in stats.redactions.items()]
        console.print("PII redacted: " + "; ".join(parts))


def print_shards(summary: dict, console: Console | None = None) -> None:
    """Tokens per scale and per language, after the drop table."""
    console = console or Console()
    docs = summary["documents"]
    console.print(f"token shards ({summary['dtype']}, vocabulary {summary['tokenizer_vocab']:,}): "
                  f"{docs.get('in', 0):,} documents = {docs.get('validation', 0):,} validation + "
                  f"{docs.get('train', 0):,} training + {docs.get('decontaminated', 0):,} decontaminated; "
                  f"{summary['tokens']['validation']:,} validation and {summary['tokens']['train']:,} training tokens")
    if "decontamination" in summary:
        console.print(decontamination_line(summary["decontamination"]))
    scales = sorted(summary["scales"].items(), key=lambda kv: kv[1]["tokens"])
    langs = sorted({lang for _, s in scales for lang in s["languages"]})
    table = Table(title="training tokens per scale (each a prefix of the next), by language", title_justify="left")
    table.add_column("")
    for name, _ in scales:
        table.add_column(name, justify="right")
    table.add_row("tokens", *[f"{s['tokens']:,}" for _, s in scales], style="bold")
    table.add_row("documents", *[f"{s['documents']:,}" for _, s in scales])
    for lang in langs:
        table.add_row(lang, *[f"{s['languages'].get(lang, 0):,}" for _, s in scales])
    console.print(table)


def decontamination_line(d: dict) -> str:
    """What decontamination removed, and the rule that removed it."""
    if not d["enabled"]:
        return "decontamination: off"
    return (f"decontaminated: {d['documents']:,} documents, {d['tokens']:,} tokens (≥ {d['min_overlap_fraction']:.0%} of "
            f"their {d['ngram']}-grams in validation); {d['documents_overlapping_kept']:,} overlapping less, kept; "
            f"{d['frequent_ngrams']:,} of {d['validation_ngrams']:,} validation {d['ngram']}-grams ignored as "
            f"boilerplate (in > {d['max_ngram_doc_frequency']:,} documents)")
