"""Export to Hugging Face and back: a tiny run of each family, exported; transformers opens it and
its logits equal scalelab's; GPT generates; `scalelab eval` of the export equals eval of the run."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from scalelab.cli import app
from scalelab.training.checkpoint import load_exported
from scalelab.training.config import REPO, load_train_config
from scalelab.training.generation import Sampling, generate
from scalelab.training.launch import run_local
from scalelab.training.loaded_model import ModelError
from scalelab.training.model_eval import eval_model

transformers = pytest.importorskip("transformers")

SAMPLE = REPO / "configs" / "train" / "sample.yaml"
FAMILIES = ("gpt", "bert", "lstm")


@pytest.fixture(scope="module")
def runs(sample_corpus, tmp_path_factory):
    """One finished 6-step run per family (ZeRO-2, one process), and its export through the CLI."""
    root = tmp_path_factory.mktemp("families")
    out = {}
    for family in FAMILIES:
        cfg = load_train_config(SAMPLE, [f"data.corpus={sample_corpus}", f"output={root / family}",
                                         "data.scale=20k", "train={steps: 6}", "eval.tokens=2k",
                                         f"model.family={family}", "deepspeed=zero2", "log_every_steps=6"])
        summary = run_local(cfg, nproc=1)
        result = CliRunner().invoke(app, ["export", str(root / family), "--to", str(root / f"{family}-hf")])
        assert result.exit_code == 0, result.output
        out[family] = (root / family, root / f"{family}-hf", summary)
    return out


def window(corpus, length=64) -> torch.Tensor:
    from scalelab.training.data import Corpus, ValidationWindows

    return ValidationWindows(Corpus(corpus), length, None, 0, 1).window_tokens(0)[None, :length].astype("int64")


@pytest.mark.parametrize("family,auto", [("gpt", "AutoModelForCausalLM"), ("bert", "AutoModelForMaskedLM")])
def test_transformers_opens_the_export_with_equal_logits(runs, sample_corpus, family, auto):
    run_dir, hf_dir, _ = runs[family]
    ours = load_exported(run_dir / "model.pt")
    hf = getattr(transformers, auto).from_pretrained(hf_dir).eval()
    ids = torch.from_numpy(window(sample_corpus))
    if family == "bert":
        ids[0, 5:40:7] = ours.cfg.mask_id
    with torch.no_grad():
        diff = (ours(ids) - hf(input_ids=ids).logits).abs().max().item()
    assert diff < 1e-5
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    assert isinstance(tok, transformers.PreTrainedTokenizerFast)
    from tokenizers import Tokenizer

    text = "The package manager installs the dependencies."
    assert tok(text)["input_ids"] == Tokenizer.from_file(str(sample_corpus / "tokenizer.json")).encode(text).ids
    assert tok.eos_token == "<|endoftext|>"
    if family == "bert":
        assert tok.mask_token == "[MASK]" and tok.mask_token_id == ours.cfg.mask_id == 4096
    info = json.loads((hf_dir / "scalelab_export.json").read_text())
    assert info["family"] == family and info["loads_with"] == auto


def test_gpt_export_generates_as_scalelab_does(runs):
    run_dir, hf_dir, _ = runs["gpt"]
    hf = transformers.AutoModelForCausalLM.from_pretrained(hf_dir).eval()
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    prompt = "The package manager"
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    out = hf.generate(ids, max_new_tokens=8, do_sample=False, min_new_tokens=8)
    ours = generate(run_dir, prompt, Sampling(max_new_tokens=8, temperature=0))
    assert out.shape == (1, ids.shape[1] + 8)
    if all(t != tok.eos_token_id for t in ours.new_ids):  # greedy: the same tokens (ours stops at eos)
        assert out[0, ids.shape[1]:].tolist() == ours.new_ids
    # Sampling is seeded: the same call, the same text; another seed, other text.
    a = generate(run_dir, prompt, Sampling(max_new_tokens=20, seed=1))
    assert a == generate(run_dir, prompt, Sampling(max_new_tokens=20, seed=1))
    result = CliRunner().invoke(app, ["generate", str(hf_dir), prompt, "--max-new-tokens", "5", "--seed", "1"])
    assert result.exit_code == 0 and result.output.startswith(prompt)


@pytest.mark.parametrize("family", FAMILIES)
def test_eval_of_the_export_equals_eval_of_the_run(runs, sample_corpus, family):
    run_dir, hf_dir, summary = runs[family]
    of_run = eval_model(run_dir, sample_corpus)
    of_export = eval_model(hf_dir, sample_corpus)
    assert of_run.loss == pytest.approx(summary["final_val_loss"], rel=1e-6)  # what the run itself scored
    assert (of_export.tokens, of_export.bytes, of_export.seq_len) == (of_run.tokens, of_run.bytes, of_run.seq_len)
    assert of_export.loss == pytest.approx(of_run.loss, rel=1e-6)
    assert of_export.bpb == pytest.approx(of_run.bpb, rel=1e-6)
    assert of_run.objective == ("masked_lm" if family == "bert" else "causal_lm")


def test_cli_eval_and_refusals(runs, sample_corpus, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(runs["bert"][1]), "--corpus", str(sample_corpus), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["objective"] == "masked_lm"

    with pytest.raises(ModelError, match="generate needs a causal model"):
        generate(runs["bert"][0], "hello")
    result = runner.invoke(app, ["export", str(tmp_path), "--to", str(tmp_path / "x")])
    assert result.exit_code == 2 and "run_config.json: missing" in result.output
    result = runner.invoke(app, ["eval", str(tmp_path), "--corpus", str(sample_corpus)])
    assert result.exit_code == 2 and "not a model" in result.output


def test_a_model_of_another_tokenizer_is_scored_on_the_retokenized_text(runs, sample_corpus, tmp_path):
    import shutil

    from scalelab.training.data import Corpus, ValidationWindows
    from scalelab.training.loaded_model import open_model
    from scalelab.training.retokenized import score_text, validation_documents

    run_dir, hf_dir, summary = runs["gpt"]
    direct = eval_model(hf_dir, sample_corpus)
    # The same tokenizer through the re-tokenizing path: the text round-trips to the same ids.
    corpus = Corpus(sample_corpus)
    windows = ValidationWindows(corpus, direct.seq_len, 2048, 0, 1)
    text = score_text(open_model(hf_dir), validation_documents(corpus, windows), direct.seq_len, 8)
    assert (text.tokens, text.bytes) == (direct.tokens, direct.bytes)
    assert text.loss == pytest.approx(direct.loss, rel=1e-6) and text.bpb == pytest.approx(direct.bpb, rel=1e-6)

    # A tokenizer that gives two of the corpus's tokens each other's ids: scored on its own tokens.
    for family, folder in (("gpt", tmp_path / "other-gpt"), ("bert", tmp_path / "other-bert")):
        shutil.copytree(runs[family][1], folder)
        spec = json.loads((folder / "tokenizer.json").read_text())
        vocab = spec["model"]["vocab"]
        a, b = sorted(vocab, key=vocab.get)[3000:3002]
        vocab[a], vocab[b] = vocab[b], vocab[a]
        (folder / "tokenizer.json").write_text(json.dumps(spec))
    other = eval_model(tmp_path / "other-gpt", sample_corpus)
    assert other.retokenized and not direct.retokenized
    assert other.bytes == direct.bytes and other.bpb == pytest.approx(direct.bpb, rel=0.05)
    with pytest.raises(ModelError, match="masked LM with another tokenizer"):
        eval_model(tmp_path / "other-bert", sample_corpus)
