# Video Diffusion Models (Ho et al., 2022): shard -> train -> sample -> FVD -> tables and plots.
#
#   snakemake --cores 2                                   # the embedded default (Moving MNIST demo)
#   snakemake --profile slurm --configfile config/paper/ucf101.yaml --replace-workflow-config
#
# The configuration is validated against workflow/schemas/config.schema.json (generated from the
# config dataclasses by `vdm schema --write`) before anything runs. See README.md.

import copy

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


# The resolved per-run configs carry the values as written (plus each run's overrides); the
# dataclasses supply the defaults, so a new option with a default reruns nothing.
USER_CONFIG = copy.deepcopy(config)


validate(config, "workflow/schemas/config.schema.json")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
