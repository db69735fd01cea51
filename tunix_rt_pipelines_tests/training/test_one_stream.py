"""Both backends train on the same arrays: on a golden packed batch their first losses agree."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunix_rt_pipelines.training import jax_backend, packed_attention, stream, torch_backend

PAIRS = [("Question: What is 3 + 4?\nAnswer step by step.\n", "3 + 4 = 7\n#### 7"),
         ("Question: What is 10 + 25?\nAnswer step by step.\n", "10 + 25 = 35\n#### 35"),
         ("Question: What is 7 + 7?\nAnswer step by step.\n", "7 + 7 = 14\n#### 14")]


@pytest.fixture(scope="module")
def golden(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples, _ = stream.tokenize_pairs(tok, PAIRS, seq_len=96)
    (batch,) = stream.iter_batches(examples, batch_size=2, seq_len=96, pad_id=tok.pad_token_id)
    return tok, examples, batch


def test_golden_batch_masks_prompt_and_padding_and_trains_answer_and_eos(golden):
    tok, examples, batch = golden
    trained = batch.input_ids[0][batch.loss_mask[0] == 1].tolist()
    assert trained == [t for ex in examples for t in ex.completion_ids]  # completions only, in order
    assert all(ex.completion_ids[-1] == tok.eos_token_id for ex in examples)
    assert batch.segment_ids[0].max() == 3  # all three examples packed into the first row
    assert batch.loss_mask[1].sum() == 0 and (batch.input_ids[1] == tok.pad_token_id).all()


def test_first_step_losses_of_both_backends_agree(golden, tiny_model_dir):
    _, _, batch = golden
    n_targets = float(batch.loss_mask[:, 1:].sum())
    torch_model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    packed_attention.enable(torch_model)  # as the torch backend trains it
    with torch.no_grad():
        torch_loss = torch_backend.token_loss_sum(torch_model, batch, torch.device("cpu")).item() / n_targets
    jax_model = jax_backend.load_model(tiny_model_dir, dtype="fp32")
    jax_loss, _ = jax_backend.loss_fn(
        jax_model, jnp.asarray(batch.input_ids), jnp.asarray(batch.loss_mask), jnp.asarray(batch.positions),
        jax_backend.attention_mask(jnp.asarray(batch.segment_ids)), jnp.asarray(n_targets))
    assert np.isfinite(torch_loss) and torch_loss > 1.0
    assert float(jax_loss) == pytest.approx(torch_loss, rel=1e-4)
