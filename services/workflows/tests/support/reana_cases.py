"""Minimal reana.yaml cases, each the shape of real analyses (written here, not copied).

Every case names the public repository and commit whose reana.yaml shows that shape (found
for the reana.yaml corpus comparison, docs/validation-corpus.md). ``official_valid`` is what
``reana-client validate`` (0.9.6) answers when run in the case's directory; ``valid`` is ours.
They differ only where docs/validation-corpus.md says why we are right.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    """A reana.yaml with the files of its analysis directory."""

    name: str
    source: str  # repository@commit (path) whose shape this is
    reana_yaml: str
    files: dict[str, str] = field(default_factory=dict)
    valid: bool = True
    official_valid: bool = True
    error_paths: tuple[str, ...] = ()  # our errors' dotted paths, when invalid
    error_text: tuple[str, ...] = ()  # what our error messages say (the engine's own words)


HELLO_PY = "import sys\nprint('hello', sys.argv)\n"
NAMES = "Jane Doe\nJoe Bloggs\n"

CWL_WORKFLOW = """\
cwlVersion: v1.0
class: Workflow
inputs:
  script: File
  names: File
outputs:
  result:
    type: File
    outputSource: greet/result
steps:
  greet:
    run: greet.tool
    in: {script: script, names: names}
    out: [result]
"""

CWL_TOOL = """\
cwlVersion: v1.0
class: CommandLineTool
baseCommand: python
inputs:
  script: {type: File, inputBinding: {position: 1}}
  names: {type: File, inputBinding: {position: 2}}
stdout: greetings.txt
outputs:
  result: {type: stdout}
"""

CWL_JOB = """\
script: {class: File, path: ../../code/hello.py}
names: {class: File, path: ../../data/names.txt}
"""

SNAKEFILE = """\
rule all:
    input:
        "results/greetings.txt"

rule greet:
    input:
        script=config["script"],
        names=config["names"],
    output:
        "results/greetings.txt"
    resources:
        compute_backend="htcondorcern",
        htcondor_max_runtime="espresso"
    container:
        "docker://docker.io/library/python:3.11-slim"
    shell:
        "python {input.script} {input.names} > {output}"
"""

SNAKE_INPUTS = "script: code/hello.py\nnames: data/names.txt\n"

YADAGE_WORKFLOW = """\
stages:
  - name: greet
    dependencies: [init]
    scheduler:
      scheduler_type: singlestep-stage
      parameters:
        script: {step: init, output: script}
        names: {step: init, output: names}
        outputfile: "{workdir}/greetings.txt"
      step:
        process:
          process_type: string-interpolated-cmd
          cmd: python "{script}" "{names}" > "{outputfile}"
        publisher:
          publisher_type: frompar-pub
          outputmap:
            outputfile: outputfile
        environment:
          environment_type: docker-encapsulated
          image: docker.io/library/python
          imagetag: 3.11-slim
"""

_CODE = {"code/hello.py": HELLO_PY, "data/names.txt": NAMES}

CASES = [
    # Serial, HTCondor at CERN: compute_backend and a job flavour as htcondor_max_runtime.
    Case(
        name="serial-htcondor-flavour",
        source="reanahub/reana-demo-helloworld@df71a87e113c84682472f8c8c90e750c518ae8bd "
        "(reana-htcondorcern.yaml)",
        reana_yaml="""\
version: 0.3.0
inputs:
  files: [code/hello.py, data/names.txt]
  parameters:
    script: code/hello.py
    names: data/names.txt
workflow:
  type: serial
  specification:
    steps:
      - name: greet
        environment: "docker.io/library/python:3.11-slim"
        compute_backend: htcondorcern
        htcondor_max_runtime: espresso
        commands:
          - python "${script}" "${names}"
outputs:
  files: [results/greetings.txt]
""",
        files=_CODE,
    ),
    # Serial with quoted memory limits and an integer uid per step.
    Case(
        name="serial-memory-and-uid",
        source="reanahub/reana-demo-atlas-recast@c6e71debf3 (reana-debug.yaml)",
        reana_yaml="""\
version: 0.6.0
inputs:
  parameters:
    did: 404958
workflow:
  type: serial
  specification:
    steps:
      - name: eventselection
        environment: docker.io/library/python:3.11-slim
        kubernetes_memory_limit: "256Mi"
        kubernetes_uid: 500
        commands:
          - echo ${did} > selected.txt
outputs:
  files: [selected.txt]
""",
    ),
    # The three values the issue reports, as REANA refuses them (each its own error here).
    Case(
        name="serial-bad-step-fields",
        source="issue 19 (the shapes of reanahub/reana-demo-atlas-recast@c6e71debf3 "
        "reana-debug.yaml with the values people write)",
        reana_yaml="""\
inputs:
  parameters:
    n: 3
workflow:
  type: serial
  specification:
    steps:
      - name: count
        environment: docker.io/library/python:3.11-slim
        kubernetes_memory_limit: 8 gigabytes
        kubernetes_uid: "1000"
        htcondor_max_runtime: two hours
        commands:
          - seq ${n}
""",
        valid=False,
        official_valid=False,
        error_paths=(
            "workflow.specification.steps.0.kubernetes_memory_limit",
            "workflow.specification.steps.0.kubernetes_uid",
            "workflow.specification.steps.0.htcondor_max_runtime",
        ),
    ),
    # A file whose name is reana_*.yml; memory limits in Gi; outputs as directories.
    Case(
        name="serial-yml-directories",
        source="KM3NeT/Analysis-galactic-sources-CTA-KM3NeT@079dfa8851 "
        "(Analysis/reana/reana_cta_dataset.yml)",
        reana_yaml="""\
version: 0.9.0
inputs:
  directories: [data]
workflow:
  type: serial
  specification:
    steps:
      - name: dataset
        environment: docker.io/library/python:3.11-slim
        kubernetes_memory_limit: "8Gi"
        commands:
          - mkdir -p results && ls data > results/listing.txt
outputs:
  directories: [results]
""",
        files={"data/a.txt": "a\n"},
    ),
    # Snakemake: a config file as inputs.parameters.input, compute backends in the rules.
    Case(
        name="snakemake-config-resources",
        source="reanahub/reana-demo-helloworld@df71a87e113c84682472f8c8c90e750c518ae8bd "
        "(reana-snakemake-htcondorcern.yaml)",
        reana_yaml="""\
version: 0.8.0
inputs:
  files: [code/hello.py, data/names.txt]
  directories: [workflow/snakemake]
  parameters:
    input: workflow/snakemake/inputs.yaml
workflow:
  type: snakemake
  file: workflow/snakemake/Snakefile
outputs:
  files: [results/greetings.txt]
""",
        files={
            **_CODE,
            "workflow/snakemake/Snakefile": SNAKEFILE,
            "workflow/snakemake/inputs.yaml": SNAKE_INPUTS,
        },
    ),
    # Snakemake with workflow.resources (CVMFS) and workspace retention rules.
    Case(
        name="snakemake-cvmfs-retention",
        source="alefisico/cmsreana_susyexample@13f5f7d977 (reana.yaml)",
        reana_yaml="""\
version: 0.9.3
inputs:
  files: [Snakefile, code/hello.py, data/names.txt]
  parameters:
    input: inputs.yaml
workflow:
  type: snakemake
  file: Snakefile
  resources:
    cvmfs:
      - cms.cern.ch
workspace:
  retention_days:
    results/*: 30
outputs:
  directories: [results/]
""",
        files={
            **_CODE,
            "Snakefile": SNAKEFILE.replace('compute_backend="htcondorcern",\n        ', ""),
            "inputs.yaml": SNAKE_INPUTS,
        },
    ),
    # Snakemake with plain parameters (no `input` file) that the Snakefile reads from its config.
    # REANA's snakemake engine runs it with config=inputs.parameters
    # (reanahub/reana-workflow-engine-snakemake@eaf8dd3d1b runner.py), and so do we; reana-client
    # validate loads the Snakefile without them and stops on the KeyError.
    Case(
        name="snakemake-parameters-as-config",
        source="cms-opendata-processing-tasks/FullSimulationReanaWorkflow@a3ca830f32 (reana.yaml)",
        reana_yaml="""\
version: 0.9.4
inputs:
  files: [workflow/Snakefile]
  parameters:
    record_id: 72677
    events: 10
workflow:
  file: workflow/Snakefile
  type: snakemake
  resources:
    cvmfs: [cms.cern.ch]
""",
        files={
            "workflow/Snakefile": (
                'rule all:\n    input: expand("events_{n}.txt", n=range(config["events"]))\n\n'
                'rule simulate:\n    output: "events_{n}.txt"\n'
                '    params: record=config["record_id"]\n'
                '    shell: "echo {params.record} > {output}"\n'
            )
        },
        official_valid=False,
    ),
    # A Snakefile that does not parse: REANA's loader refuses it, at workflow.file.
    Case(
        name="snakemake-syntax-error",
        source="reanahub/reana-demo-helloworld@df71a87e113c84682472f8c8c90e750c518ae8bd "
        "(reana-snakemake.yaml, with a rule broken by hand)",
        reana_yaml="""\
inputs:
  parameters:
    input: inputs.yaml
workflow:
  type: snakemake
  file: Snakefile
""",
        files={"Snakefile": "rule greet:\n    shell 'echo'\n", "inputs.yaml": "a: 1\n"},
        valid=False,
        official_valid=False,
        error_paths=("workflow.file",),
        error_text=("SyntaxError in file Snakefile, line 2",),
    ),
    # CWL: a workflow with its tool in a second file and a job file as the input parameters.
    Case(
        name="cwl-tool-and-job",
        source="reanahub/reana-demo-helloworld@df71a87e113c84682472f8c8c90e750c518ae8bd "
        "(reana-cwl.yaml)",
        reana_yaml="""\
version: 0.3.0
inputs:
  files: [code/hello.py, data/names.txt]
  directories: [workflow/cwl]
  parameters:
    input: workflow/cwl/job.yml
workflow:
  type: cwl
  file: workflow/cwl/hello.cwl
outputs:
  files: [greetings.txt]
""",
        files={
            **_CODE,
            "workflow/cwl/hello.cwl": CWL_WORKFLOW,
            "workflow/cwl/greet.tool": CWL_TOOL,
            "workflow/cwl/job.yml": CWL_JOB,
        },
    ),
    # CWL whose reana.yaml names a workflow file the repository does not have.
    Case(
        name="cwl-missing-workflow-file",
        source="KnowledgeCaptureAndDiscovery/bikes_rent_example (reana-cwl.yaml) and "
        "cms-legacydata-validation/LegacyReprocessingValidation (reana-cwl.yaml)",
        reana_yaml="""\
version: 0.6.0
inputs:
  parameters:
    input: workflow/input.yml
workflow:
  type: cwl
  file: workflow/workflow.cwl
""",
        files={"workflow/input.yml": "a: 1\n", "workflow/step1.cwl": CWL_TOOL},
        valid=False,
        official_valid=False,
        error_paths=("workflow.file",),
        error_text=("workflow/workflow.cwl is not among the files sent",),
    ),
    # CWL with a type that does not exist: cwltool --pack refuses it.
    Case(
        name="cwl-unknown-type",
        source="reanahub/reana-demo-helloworld@df71a87e113c84682472f8c8c90e750c518ae8bd "
        "(reana-cwl.yaml, a type misspelt by hand)",
        reana_yaml="""\
workflow:
  type: cwl
  file: hello.cwl
""",
        files={"hello.cwl": CWL_WORKFLOW.replace("script: File", "script: Fiel")},
        valid=False,
        official_valid=False,
        error_paths=("workflow.file",),
        error_text=("hello.cwl:3:", "Fiel"),
    ),
    # Yadage: stages in a workflow file of the analysis directory.
    Case(
        name="yadage-stages",
        source="reanahub/reana-demo-helloworld@df71a87e113c84682472f8c8c90e750c518ae8bd "
        "(reana-yadage.yaml)",
        reana_yaml="""\
version: 0.3.0
inputs:
  files: [code/hello.py, data/names.txt]
  directories: [workflow/yadage]
  parameters:
    names: data/names.txt
    script: code/hello.py
workflow:
  type: yadage
  file: workflow/yadage/workflow.yaml
outputs:
  files: [greet/greetings.txt]
""",
        files={**_CODE, "workflow/yadage/workflow.yaml": YADAGE_WORKFLOW},
    ),
    # Yadage with operational options (initfiles).
    Case(
        name="yadage-options",
        source="alintulu/initfiles-example@1de4495375 (reana-yadage.yaml)",
        reana_yaml="""\
version: 0.7.0
inputs:
  files: [code/hello.py, data/names.txt]
  parameters:
    names: data/names.txt
    script: code/hello.py
  options:
    initfiles:
      - workflow.yaml
workflow:
  type: yadage
  file: workflow.yaml
""",
        files={**_CODE, "workflow.yaml": YADAGE_WORKFLOW},
    ),
    # An operational option REANA does not know for the engine.
    Case(
        name="serial-unknown-option",
        source="alintulu/initfiles-example@1de4495375 (reana-yadage.yaml, its option "
        "given to a serial workflow)",
        reana_yaml="""\
inputs:
  options:
    initfiles: [x]
workflow:
  type: serial
  specification:
    steps:
      - environment: docker.io/library/python:3.11-slim
        commands: [echo hi]
""",
        valid=False,
        official_valid=False,
        error_paths=("inputs.options",),
        error_text=('Operational option "initfiles" not supported for serial workflows',),
    ),
    # YAML 1.1 merge keys and anchors: a common step written once (REANA's PyYAML accepts it).
    Case(
        name="serial-merge-keys",
        source="none in the corpus uses them; the YAML 1.1 merge key as PyYAML's safe_load "
        "(REANA's loader) reads it",
        reana_yaml="""\
inputs:
  parameters:
    n: 3
workflow:
  type: serial
  specification:
    steps:
      - &base
        name: first
        environment: docker.io/library/python:3.11-slim
        kubernetes_memory_limit: "256Mi"
        commands:
          - seq ${n}
      - <<: *base
        name: second
""",
    ),
    # An unquoted date as a parameter: reana-client validate passes it, reana-client cannot
    # send it (JSON has no date); we refuse it with its line.
    Case(
        name="serial-date-parameter",
        source="issue 19 (a date given as a parameter, unquoted)",
        reana_yaml="""\
inputs:
  parameters:
    since: 2021-03-04
workflow:
  type: serial
  specification:
    steps:
      - environment: docker.io/library/python:3.11-slim
        commands:
          - echo ${since}
""",
        valid=False,
        official_valid=True,
        error_paths=("inputs.parameters.since",),
        error_text=("quote it ('2021-03-04')",),
    ),
    # An empty list key: a person wrote `files:` and nothing under it.
    Case(
        name="empty-files",
        source="issue 19 (outputs: files: left empty)",
        reana_yaml="""\
workflow:
  type: serial
  specification:
    steps:
      - environment: docker.io/library/python:3.11-slim
        commands: [echo hi]
outputs:
  files:
""",
        valid=False,
        official_valid=False,
        error_paths=("outputs.files",),
        error_text=("'files' is empty",),
    ),
    # The same key twice in one mapping: PyYAML (REANA's loader) keeps the last one silently.
    Case(
        name="duplicate-key",
        source="issue 19 (a step edited by copy and paste)",
        reana_yaml="""\
workflow:
  type: serial
  specification:
    steps:
      - environment: docker.io/library/python:3.11-slim
        commands: [echo one]
        commands: [echo two]
""",
        valid=False,
        official_valid=True,
        error_paths=("",),
        error_text=("found duplicate key 'commands'",),
    ),
    # An output path that leaves the workspace (ours only: REANA never checks it).
    Case(
        name="serial-path-leaves-workspace",
        source="reanahub/reana-demo-root6-roofit@9f7833b9cb (reana.yaml, its output moved)",
        reana_yaml="""\
workflow:
  type: serial
  specification:
    steps:
      - environment: docker.io/library/python:3.11-slim
        commands: [echo hi > ../plot.png]
outputs:
  files: [../plot.png]
""",
        valid=False,
        official_valid=True,
        error_paths=("outputs.files.0",),
        error_text=("'..' is not allowed",),
    ),
    # A compute backend no REANA offers, in a Snakefile's resources (reana-client checks
    # compute backends only against a server, with --server-capabilities).
    Case(
        name="snakemake-unknown-compute-backend",
        source="reanahub/reana-demo-helloworld@df71a87e113c84682472f8c8c90e750c518ae8bd "
        "(workflow/snakemake/Snakefile-htcondorcern, its backend misspelt by hand)",
        reana_yaml="""\
inputs:
  parameters:
    input: inputs.yaml
workflow:
  type: snakemake
  file: Snakefile
""",
        files={
            **_CODE,
            "Snakefile": SNAKEFILE.replace('"htcondorcern"', '"htcondor"'),
            "inputs.yaml": SNAKE_INPUTS,
        },
        valid=False,
        official_valid=True,
        error_paths=("workflow.file",),
        error_text=('Compute backend "htcondor" found in step "greet" is not supported',),
    ),
]
