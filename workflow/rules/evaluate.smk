# The metrics of every sample set (vdm/metrics/registry.py): one metrics JSON per set. The real clips'
# outputs of each detector a metric compares with are a job and a file of their own (one per split and clip
# length), computed once, beside the sampling, and read by every evaluation; the generated videos' outputs
# of every detector the set's metrics need are a job per chunk of the set, and the evaluation reads those
# files, never the whole set of videos. The digit metrics of Moving MNIST (vdm/metrics/digits.py) read the
# digit classifier that rule digit_classifier trains for the data's geometry: every job that runs it gets the
# file as an input and its path as evaluate.digit_classifier (set here, not in the resolved configs, so that
# adding it reruns no sampling).

import functools

from vdm.metrics.registry import generated_detectors

DIGIT_CLASSIFIER = f"{OUT}/metrics/digit-classifier.pt"
DIGITS_FLAG = f"--set evaluate.digit_classifier={DIGIT_CLASSIFIER}"


def _eval_context(wildcards):
    """The metrics context of sample set {run}/{setting} as its evaluation jobs see it (with the classifier)."""
    return _eval_context_of(wildcards.run, wildcards.setting)


@functools.lru_cache(maxsize=None)
def _eval_context_of(run, setting):  # once per set, not once per chunk job
    exp = experiment(sample_overrides(run, setting))
    _set(exp, "evaluate.digit_classifier", DIGIT_CLASSIFIER)
    cfg = ExperimentConfig.from_dict(exp)
    return MetricsContext(cfg, set_frames(cfg))


def _eval_real_inputs(wildcards):
    """The real-features files the metrics of sample set {run}/{setting} read (the registry's real_needs)."""
    ctx = _eval_context(wildcards)
    return [real_features_file(detector, split, ctx.frames) for detector, split in real_needs(ctx)]


def _digit_classifier_input(wildcards):
    return [DIGIT_CLASSIFIER] if "digits" in generated_detectors(_eval_context(wildcards)) else []


rule digit_classifier:
    input:
        cfg=f"{OUT}/configs/data.yaml",
    output:
        weights=DIGIT_CLASSIFIER,
        record=DIGIT_CLASSIFIER.removesuffix(".pt") + ".json",
    log:
        f"{OUT}/logs/evaluate/digit-classifier.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **resources_of("evaluate"),
    shell:
        "vdm digits --config {input.cfg:q} --out {output.weights:q} --quiet > {log:q} 2>&1"


for _detector in REAL_DETECTORS:

    rule:
        name:
            f"real_features_{_detector}"
        input:
            cfg=f"{OUT}/configs/evaluate.yaml",
            shards=real_features_shards,
            classifier=[DIGIT_CLASSIFIER] if _detector == "digits" else [],
        output:
            real_features_file(_detector, "{split}", "{frames}"),
        log:
            real_features_log(_detector),
        conda:
            CONDA_ENV
        threads: threads_of("evaluate")
        resources:
            **resources_of("evaluate"),
        params:
            detector=_detector,
            split=real_features_split_args,
        shell:
            "vdm evaluate --config {input.cfg:q} {DIGITS_FLAG} --real-only --detector {params.detector:q}"
            " {params.split:q}"
            " --frames {wildcards.frames:q} --out {output:q} --quiet > {log:q} 2>&1"


rule features_chunk:
    input:
        cfg=f"{OUT}/configs/sample/{{run}}/{{setting}}.yaml",
        samples=f"{OUT}/samples/{{run}}/{{setting}}/chunks/{{chunk}}.npz",
        classifier=_digit_classifier_input,
    output:
        f"{OUT}/features/{{run}}/{{setting}}/{{chunk}}.npz",
    log:
        f"{OUT}/logs/evaluate/{{run}}/{{setting}}/features-{{chunk}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    shell:
        "vdm evaluate --config {input.cfg:q} {DIGITS_FLAG} --features-only --samples {input.samples:q}"
        " --out {output:q} --quiet > {log:q} 2>&1"


rule evaluate:
    input:
        cfg=f"{OUT}/configs/sample/{{run}}/{{setting}}.yaml",
        samples=f"{OUT}/samples/{{run}}/{{setting}}/samples.npz",
        features=_feature_chunks,
        real=_eval_real_inputs,
        classifier=_digit_classifier_input,
    output:
        f"{OUT}/metrics/{{run}}/{{setting}}.json",
    log:
        f"{OUT}/logs/evaluate/{{run}}/{{setting}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    shell:
        "vdm evaluate --config {input.cfg:q} {DIGITS_FLAG} --samples {input.samples:q}"
        " --gen-features {input.features:q} --real-features {input.real:q} --out {output:q} --quiet > {log:q} 2>&1"
