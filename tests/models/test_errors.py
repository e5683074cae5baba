"""Bad input gets a clear error that names the problem and the fix."""

import pytest
import torch

from resnets import create_model


def test_wrong_channel_count():
    model = create_model("resnet20")
    with pytest.raises(ValueError, match=r"3-channel input but got 1 channels.*in_chans=1"):
        model(torch.randn(2, 1, 32, 32))


def test_missing_batch_dimension():
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        create_model("resnet20")(torch.randn(3, 32, 32))


def test_image_too_small():
    with pytest.raises(ValueError, match=r"too small.*at least 32x32"):
        create_model("resnet18")(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"too small.*at least 4x4"):
        create_model("resnet20")(torch.randn(2, 3, 2, 2))


def test_unknown_model_names_close_matches():
    with pytest.raises(ValueError, match=r"unknown model 'resnet21'.*did you mean.*'resnet20'"):
        create_model("resnet21")


def test_unknown_option_names_close_matches():
    with pytest.raises(ValueError, match=r"unknown model option 'num_clases'.*did you mean 'num_classes'"):
        create_model("resnet20", num_clases=10)


@pytest.mark.parametrize(
    "options,pattern",
    [
        ({"num_classes": "10"}, r"num_classes='10' must be int"),
        ({"zero_init_last": 1}, r"zero_init_last=1 must be bool"),
        ({"shortcut": "D"}, r"shortcut option 'D'|shortcut='D'"),
        ({"variant": "v2"}, r"variant='v2'.*v1\.5"),
        ({"output_stride": 12}, r"output_stride=12 is not possible.*\[4, 8, 16, 32\]"),
        ({"drop_path_rate": 1.5}, r"drop_path_rate must be in \[0, 1\)"),
    ],
)
def test_bad_option_values(options, pattern):
    with pytest.raises(ValueError, match=pattern):
        create_model("resnet18", **options)


def test_plain_net_refuses_a_shortcut():
    with pytest.raises(ValueError, match="plain network without shortcuts"):
        create_model("plain20", shortcut="B")
