"""The .rknn reader on every real model in the shared fixtures, and on files that are not models."""
import pytest

from rkdeploy.rknn_model import ModelError, read_model
from tests.conftest import FIXTURES

MODELS = FIXTURES / "models"      # copies of ../shared/fixtures/models (real toolkit outputs)


@pytest.mark.parametrize("name,fmt,platform,toolkit,inputs", [
    ("multi_rk3588_tk134.rknn", 2, "rk3588", "1.3.4", 2),
    ("multi_rv1126b_tk232.rknn", 6, "rv1126b", "2.3.2", 2),
    ("pphuman_rk3588_tk231.rknn", 6, "rk3588", "2.3.1", 1),
    ("tiny_rk3568_tk250.rknn", 6, "rk3568", "2.5.0", 1),
    ("tiny_rk3588_tk250.rknn", 6, "rk3588", "2.5.0", 1),
])
def test_every_fixture_model_gives_its_format_platform_toolkit_and_io_counts(name, fmt, platform, toolkit, inputs):
    model = read_model(MODELS / name)
    assert model.format_version == fmt and model.target_platforms == (platform,)
    assert str(model.toolkit_release) == toolkit and model.inputs == inputs and model.outputs == 1
    assert model.size == (MODELS / name).stat().st_size and len(model.sha256) == 64


def test_a_text_file_named_rknn_is_refused_as_not_a_model(tmp_path):
    fake = tmp_path / "model.rknn"
    fake.write_text("hello, I am not a model\n")
    with pytest.raises(ModelError, match="not an RKNN model"):
        read_model(fake)


def test_a_truncated_model_is_refused_as_truncated(tmp_path):
    cut = tmp_path / "cut.rknn"
    cut.write_bytes((MODELS / "tiny_rk3588_tk250.rknn").read_bytes()[:5000])
    with pytest.raises(ModelError, match="truncated"):
        read_model(cut)
