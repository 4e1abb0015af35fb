# The metrics of every sample set (vdm/metrics/registry.py): one metrics JSON per set. The real clips'
# outputs of each detector a metric compares with are a job and a file of their own (one per split and clip
# length), computed once, beside the sampling, and read by every evaluation; the generated videos' outputs
# of every detector the set's metrics need are a job per chunk of the set, and the evaluation reads those
# files, never the whole set of videos. The digit metrics of Moving MNIST (vdm/metrics/digits.py) read the
# digit classifier that rule digit_classifier trains for the data's geometry: every job that runs it gets the
# file as an input and its path as evaluate.digit_classifier (set here, not in the resolved configs, so that
# adding it reruns no sampling).


rule digit_classifier:
    input:
        cfg=f"{OUT}/configs/digits.yaml",
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
            cfg=f"{OUT}/configs/real.yaml",
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
            digits=DIGITS_SETTING,
            detector=_detector,
            split=real_features_split_args,
        shell:
            "vdm evaluate --config {input.cfg:q} --set {params.digits:q} --real-only --detector {params.detector:q}"
            " {params.split:q}"
            " --frames {wildcards.frames:q} --out {output:q} --quiet > {log:q} 2>&1"


rule features_chunk:
    input:
        cfg=f"{OUT}/configs/features/{{run}}/{{setting}}.yaml",
        samples=f"{OUT}/samples/{{run}}/{{setting}}/chunks/{{chunk}}.npz",
        classifier=digit_classifier_input,
    output:
        f"{OUT}/features/{{run}}/{{setting}}/{{chunk}}.npz",
    log:
        f"{OUT}/logs/evaluate/{{run}}/{{setting}}/features-{{chunk}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        digits=DIGITS_SETTING,
    shell:
        "vdm evaluate --config {input.cfg:q} --set {params.digits:q} --features-only --samples {input.samples:q}"
        " --out {output:q} --quiet > {log:q} 2>&1"


rule evaluate:
    input:
        cfg=f"{OUT}/configs/metrics/{{run}}/{{setting}}.yaml",
        samples=f"{OUT}/samples/{{run}}/{{setting}}/samples.npz",
        features=_feature_chunks,
        real=real_features_inputs,
        classifier=digit_classifier_input,
    output:
        f"{OUT}/metrics/{{run}}/{{setting}}.json",
    log:
        f"{OUT}/logs/evaluate/{{run}}/{{setting}}.log",
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        digits=DIGITS_SETTING,
    shell:
        "vdm evaluate --config {input.cfg:q} --set {params.digits:q} --samples {input.samples:q}"
        " --gen-features {input.features:q} --real-features {input.real:q} --out {output:q} --quiet > {log:q} 2>&1"
