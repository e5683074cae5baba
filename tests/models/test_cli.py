"""`resnets models` and `resnets summary`."""

from resnets.cli import main


def test_models_lists_parameters_and_macs(capsys):
    assert main(["models", "resnet*0"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("resnet50 "))
    assert "25,557,032" in row and "4.089" in row  # torchvision's count and GFLOPS
    assert "resnet20 " in out and "269,722" in out and "resnet18 " not in out


def test_models_unknown_pattern_is_an_error(capsys):
    assert main(["models", "vgg*"]) == 2
    assert "no model matches" in capsys.readouterr().err


def test_summary_counts_weighted_layers(capsys):
    assert main(["summary", "resnet18"]) == 0
    out = capsys.readouterr().out
    assert "weighted layers: 1 + 4 + 4 + 4 + 4 + 1 = 18" in out
    assert "(1, 512, 7, 7)" in out


def test_summary_unknown_model_suggests(capsys):
    assert main(["summary", "resnet19"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_summary_counts_macs_of_the_model_it_shows(capsys):
    assert main(["summary", "resnet18", "--in-chans", "1", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("parameters:"))
    # The stem sees 1 channel and the head 10 classes: fewer MACs than the 3-channel, 1000-class 1.814 G.
    macs = float(line.split("multiply-adds:")[1].split()[0])
    assert 1.7 < macs < 1.814


def test_models_without_flops_prints_no_macs(capsys):
    assert main(["models", "resnet20", "--no-flops"]) == 0
    out = capsys.readouterr().out
    assert "GMAC" not in out and "269,722" in out
