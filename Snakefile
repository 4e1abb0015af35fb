# Video Diffusion Models (Ho et al., 2022): shard -> train -> sample -> FVD -> tables and plots.
#
#   snakemake --cores 2                                   # the embedded default (Moving MNIST, Tables 4-6)
#   snakemake --profile slurm --configfile config/paper/ucf101.yaml --replace-workflow-config
#
# The configuration is validated against workflow/schemas/config.schema.json (generated from the
# config dataclasses by `vdm schema --write`) before anything runs. See README.md.

import copy

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


# The embedded default, unless config files are given (`--configfile X`): then the configuration is exactly those
# files. (Snakemake would merge config/config.yaml under them in every job it spawns -- a `run:` job, a cluster
# job -- which does not receive --replace-workflow-config, so a key X leaves out would come back from the default.)
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# `snakemake --report report.html`: this description, then the results flagged with report() in the rules.
report: "workflow/report/workflow.rst"


# The resolved per-run configs carry the values as written (plus each run's overrides); the
# dataclasses supply the defaults, so a new option with a default reruns nothing.
USER_CONFIG = copy.deepcopy(config)


# The file(s) the configuration came from, for error messages.
CONFIG_SOURCE = ", ".join(str(p) for p in workflow.overwrite_configfiles) or "config/config.yaml"
# Snakemake's loader keeps the last of two equal keys (two `train:` sections lose the first): read each file
# again, strictly, so that such a file is refused, naming the key and both lines.
from vdm.utils.yamlfile import DuplicateKeyError, load_yaml

for _source in [str(p) for p in workflow.overwrite_configfiles] or ["config/config.yaml"]:
    try:
        load_yaml(_source)
    except DuplicateKeyError as e:
        raise WorkflowError(f"config error: {e}") from None
try:
    validate(config, "workflow/schemas/config.schema.json")
except WorkflowError as e:
    raise WorkflowError(f"config error in {CONFIG_SOURCE}: {e}") from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/cascade.smk"
include: "workflow/rules/plan.smk"


rule all:
    default_target: True
    input:
        all_targets(),
