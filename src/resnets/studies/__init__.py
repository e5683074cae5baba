"""The papers' claims as studies: degradation, gradient flow, identity, lesion, training without
normalisation; each writes a report.

>>> from resnets.studies import default_recipe, run_degradation
>>> out = run_degradation(default_recipe("degradation", "cpu"), out_dir=Path("runs/deg"))
"""

from resnets.studies.degradation import StudyOutput, run_degradation
from resnets.studies.gradients import measure, run_gradients
from resnets.studies.identity import insert_units, run_identity, zeroed_branch_error
from resnets.studies.lesion import lesion, run_lesion
from resnets.studies.nets import NetSpec, build_net, ladder
from resnets.studies.normfree import run_normfree
from resnets.studies.recipe import PAPER_CIFAR10, Recipe, default_recipe
from resnets.studies.reproduce import PAPER_TEST_ERROR, he2015_recipe, reproduce_he2015
from resnets.studies.trainer import train_network

__all__ = [
    "NetSpec",
    "PAPER_CIFAR10",
    "PAPER_TEST_ERROR",
    "Recipe",
    "StudyOutput",
    "build_net",
    "default_recipe",
    "he2015_recipe",
    "insert_units",
    "ladder",
    "lesion",
    "measure",
    "reproduce_he2015",
    "run_degradation",
    "run_gradients",
    "run_identity",
    "run_lesion",
    "run_normfree",
    "train_network",
    "zeroed_branch_error",
]
