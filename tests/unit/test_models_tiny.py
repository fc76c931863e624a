"""learning.models: the tiny causal LM and the optional Hugging Face loader."""

import pytest
import torch

from learning.models import GPT2_SMALL, TINY, TinyConfig, build_tiny, count_params, loss
from learning.models.hf import HfUnavailable, hf_available, load_causal_lm
from learning.spsa import param_checksum


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_has_about_0_8m_parameters_and_is_seeded():
    a, b = build_tiny(TINY), build_tiny(TINY)
    assert 0.75e6 <= count_params(a) <= 0.9e6
    assert param_checksum(a) == param_checksum(b)
    assert param_checksum(a) != param_checksum(build_tiny(TinyConfig(seed=1)))


def test_build_does_not_touch_global_rng():
    state = torch.random.get_rng_state()
    build_tiny(TinyConfig(d_model=16, n_layers=1, n_heads=2, context=16))
    assert torch.equal(state, torch.random.get_rng_state())


def test_initial_loss_is_near_uniform_and_causal():
    # Arrange
    model = build_tiny(TinyConfig(d_model=32, n_layers=2, n_heads=2, context=32))
    batch = torch.randint(0, 256, (2, 17), generator=torch.Generator().manual_seed(0))

    # Act
    with torch.no_grad():
        value = float(loss(model, batch))
        full = model(batch[:, :-1])
        prefix = model(batch[:, :8])

    # Assert: ln 256 ≈ 5.55; changing future tokens does not change past logits
    assert value == pytest.approx(5.55, abs=0.2)
    assert torch.allclose(full[:, :8], prefix, atol=1e-5)


def test_gpt2_small_config_is_124m_shape():
    GPT2_SMALL.validate()
    d, layers, vocab, ctx = GPT2_SMALL.d_model, GPT2_SMALL.n_layers, GPT2_SMALL.vocab_size, GPT2_SMALL.context
    params = vocab * d + ctx * d + layers * (12 * d * d + 13 * d) + 2 * d
    assert 124e6 <= params <= 125e6


def test_bad_configs_and_inputs():
    with pytest.raises(ValueError):
        TinyConfig(d_model=30, n_heads=4).validate()
    with pytest.raises(ValueError):
        build_tiny(TinyConfig(n_layers=0))
    model = build_tiny(TinyConfig(d_model=16, n_layers=1, n_heads=2, context=16))
    with pytest.raises(ValueError):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError):
        loss(model, torch.zeros(1, 1, dtype=torch.long))


def test_hf_loader_reports_missing_path_or_extra(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_causal_lm(tmp_path / "absent")
    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"not a model")
    if not hf_available(gguf=True):
        with pytest.raises(HfUnavailable, match="plexus\\[hf\\]"):
            load_causal_lm(fake)
