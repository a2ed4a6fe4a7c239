#!/usr/bin/env python3
"""gen_stdtask_refs.py - lm-evaluation-harness 0.4.13's requests for the standard tasks.

For each task of suites/tasks/standard/ tested here, loads lm-eval's own task (the YAML of the
installed package, by name through TaskManager) with dataset_path overridden to the local JSON
Lines rows of tests/data/stdtasks/ (datasets' "json" builder, the dataset's own field names),
builds its requests with Task.build_all_requests and writes, per task,
tests/data/stdtasks/refs/TASK.json: for every doc, its requests in order, each with lm-eval's
arguments (context and continuation strings, as Instance.arguments holds them), the pair as
HFLM._encode_pair passes it on (trailing whitespace of the context moved to the continuation),
and the gold index (Task.doc_to_target).

Usage (offline, a few seconds): /work/lmeval/venv/bin/python tests/gen_stdtask_refs.py
The C test (tests/test_stdtasks.c) reads the committed outputs and needs no Python.
"""
import json
import os
import sys
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "stdtasks")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FEWSHOT_SEED = 1234  # lm-eval's default fewshot_random_seed

# name: (lm-eval task, {split: rows file}, num_fewshot or None for the YAML's)
TASKS = {
    "arc_easy": ("arc_easy", {"test": "arc_easy.jsonl"}, None),
    "arc_challenge": ("arc_challenge", {"test": "arc_challenge.jsonl"}, None),
    "piqa": ("piqa", {"validation": "piqa.jsonl"}, None),
    "hellaswag": ("hellaswag", {"validation": "hellaswag.jsonl"}, None),
    "winogrande": ("winogrande", {"validation": "winogrande.jsonl"}, None),
    "lambada_openai": ("lambada_openai", {"test": "lambada_openai.jsonl"}, None),
    "wikitext": ("wikitext", {"test": "wikitext.jsonl"}, None),
    "gsm8k": ("gsm8k", {"test": "gsm8k_test.jsonl", "train": "gsm8k_train.jsonl"}, None),
    "mmlu_anatomy": ("mmlu_anatomy", {"test": "mmlu_anatomy_test.jsonl", "dev": "mmlu_anatomy_dev.jsonl"}, 5),
}

# model responses for the generation filters: a strict answer, none, several numbers, money,
# negative and decimal numbers, trailing dots, spaces, non-ASCII text
RESPONSES = [
    " She sells 9 eggs at $2 each, so 9 * 2 = 18.\n#### 18",
    " I do not know.",
    " 12 + 30 = 42, then 42 - 2 = 40 and 1,000 more.",
    " The answer is $1,234.50.",
    " #### -7.5, final",
    " 3 apples and 4 pears: 7",
    "#### 5\n#### 6",
    " café costs €3 and 45 cents ",
    "",
    " x 1 y 22 z",
]

def main():
    if metadata.version("lm_eval") != "0.4.13":
        sys.exit("needs lm-eval 0.4.13, found " + metadata.version("lm_eval"))
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks import TaskManager

    tm = TaskManager()
    os.makedirs(os.path.join(DATA, "refs"), exist_ok=True)
    for name, (lm_name, files, shots) in TASKS.items():
        # splits the YAML names but the test leaves unused (0-shot: the sampler's pool is
        # built, never drawn from) read the same rows
        files = dict(files)
        first = next(iter(files.values()))
        for split in ("train", "validation", "test"):
            files.setdefault(split, first)
        spec = {"task": lm_name, "dataset_path": "json", "dataset_name": None,
                "dataset_kwargs": {"data_files": {k: os.path.join(DATA, v) for k, v in files.items()}}}
        if shots is not None:
            spec["num_fewshot"] = shots
        # the registered YAML (includes resolved), then the local rows over its dataset
        cfg = tm._factory._load_full_config(tm._entry(lm_name), spec)
        for key in ("tag", "group", "task_list"):
            cfg.pop(key, None)
        task = ConfigurableTask(config=cfg)
        task.set_fewshot_seed(seed=FEWSHOT_SEED)  # as evaluator.simple_evaluate does (--seed's 4th value)
        task.build_all_requests(rank=0, world_size=1)
        docs = {}
        for inst in task.instances:
            d = docs.setdefault(inst.doc_id, {"doc_id": inst.doc_id, "requests": []})
            # the gold index (lm-eval's multiple inputs, WinoGrande: doc_to_text gives it)
            if task.OUTPUT_TYPE == "loglikelihood_rolling":
                d.setdefault("requests", [])
            d["target"] = task.doc_to_text(inst.doc) if task.multiple_input else task.doc_to_target(inst.doc)
            if task.OUTPUT_TYPE == "loglikelihood_rolling":  # the text, and the words and bytes counted
                r = task.process_results(inst.doc, [0.0])
                d["requests"].append({"text": inst.arguments[0], "words": r["word_perplexity"][1],
                                      "bytes": r["byte_perplexity"][1]})
                continue
            if task.OUTPUT_TYPE == "generate_until":  # the prompt and the stop strings
                d["requests"].append({"context": inst.arguments[0], "until": inst.arguments[1]["until"],
                                      "max_gen_toks": inst.arguments[1].get("max_gen_toks", 256)})
                continue
            ctx, cont = inst.arguments[0], inst.arguments[1]
            # HFLM._encode_pair: the context's trailing whitespace moves to the continuation
            d["requests"].append({"context": ctx, "continuation": cont,
                                  "encoded_context": ctx.rstrip(), "encoded_continuation": ctx[len(ctx.rstrip()):] + cont})
        if task.OUTPUT_TYPE == "generate_until":  # each filter (lm-eval's own objects) on sample responses
            filt = []
            for ens in task._filters:
                outs = [r for r in RESPONSES]
                for f in ens.filters:
                    f = f if hasattr(f, "apply") else f()  # FilterEnsemble keeps factories
                    outs = [x[0] if isinstance(x, list) else x for x in f.apply([[r] for r in outs], [None] * len(outs))]
                filt.append({"name": ens.name, "outputs": outs})
            extra = {"responses": RESPONSES, "filters": filt}
        else:
            extra = {}
        out = {"lm_eval": metadata.version("lm_eval"), "task": lm_name, "num_fewshot": task.config.num_fewshot,
               "docs": [docs[k] for k in sorted(docs)], **extra}
        with open(os.path.join(DATA, "refs", name + ".json"), "w") as f:
            json.dump(out, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(name, len(out["docs"]), "docs", sum(len(d["requests"]) for d in out["docs"]), "requests")


if __name__ == "__main__":
    main()
