# The cost plan (vdm/plan.py): network evaluations, FLOPs and GPU-hours per stage of this
# configuration, and the jobs that would exceed their time limit -- before anything runs:
#
#   snakemake plan --configfile config/paper/bair.yaml --replace-workflow-config --cores 1
#
# Not part of `all`; it reads nothing but the configuration.


rule plan:
    input:
        spec=spec_file("plan"),
    output:
        md=f"{OUT}/plan.md",
        spec=f"{OUT}/plan-spec.json",
    log:
        f"{OUT}/logs/plan.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "cp {input.spec:q} {output.spec:q}" " && vdm plan --spec {output.spec:q} --out {output.md:q} 2> {log:q}"
