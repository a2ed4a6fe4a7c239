#!/usr/bin/env python3
"""gen_lmeval_refs.py - reference outputs of lm-evaluation-harness 0.4.13 for effbench's evals.

Writes tests/data/lmeval/ (committed; CI never runs this script, and the C test needs no Python):

  models/{llama-tiny,qwen2-tiny}/  tokenizer.json, tokenizer_config.json, special_tokens_map.json
                                   of the golden tiny models (weights: /work/shared/golden/dense/NAME)
  tasks/*.jsonl                    the items (effbench's field names; committed, read here)
  tasks/*.json                     the effbench task definitions, written here
  out/RUN/TASK.json                per run of lm_eval and per task: settings, every request string,
                                   the token ids lm-eval fed, log-likelihoods, predictions, metrics

The ids come from lm-eval's own code on an HFLM instance built with the run's model_args
(HFLM._encode_pair, HFLM.tok_encode, HFLM.tok_batch_encode, lm_eval.utils.get_rolling_token_windows
and make_disjoint_window, HFLM._loglikelihood_tokens for the per-window sums,
HFLM._model_generate for the generated ids), not from a re-implementation. The scores come from
`lm_eval --log_samples` itself, run as a subprocess.

Usage (needs lm-eval[hf]==0.4.13 with torch; runs offline on the CPU, about 5 minutes on 2 cores):

    /work/lmeval/venv/bin/python tests/gen_lmeval_refs.py [--venv /work/lmeval/venv]

With --venv, the script re-runs itself with that environment's python. LMEVAL_REFS_RUNS=ID,...
redoes only those runs (see RUNS_ALL). The tokenizers are built
from tests/data/tokenizers/{llama3-style,gpt2-style}/tokenizer.json (see build_tokenizer).
"""
import argparse
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata

LMEVAL_VERSION = "0.4.13"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data", "lmeval")
TOK_SRC = os.path.join(HERE, "data", "tokenizers")
GOLDEN = os.environ.get("EFFBENCH_GOLDEN", "/work/shared/golden/dense")
FEWSHOT_SEED = 1234  # lm-eval's default fewshot_random_seed (cli --seed "0,1234,1234,1234")

# ---------------------------------------------------------------------------------------------
# Tokenizers: the effbench test tokenizers cut to the models' 512 ids.
# ---------------------------------------------------------------------------------------------
NV = 512  # vocab_size of the golden tiny models
# Qwen2's pre-tokenizer regex (single digits). transformers 5 rebuilds exactly this for
# model_type qwen2 whatever tokenizer.json says, so tokenizer.json carries it too.
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
            r"|\s*[\r\n]+|\s+(?!\S)|\s+")
MODELS = {
    # name: (source tokenizer style, EOS text, BOS text or None)
    "llama-tiny": ("llama3-style", "<|end_of_text|>", "<|begin_of_text|>"),
    "qwen2-tiny": ("gpt2-style", "<|endoftext|>", None),
}


def build_tokenizer(name):
    """tokenizer.json for NAME: id 0 <|begin_of_text|> (special), id 1 EOS (special, = the
    config's eos_token_id), ids 2..257 the 256 byte-level symbols in their source order,
    258..511 the first 254 merges. llama-tiny keeps the llama3-style Split regex and the
    TemplateProcessing post-processor that adds BOS (id 0); qwen2-tiny gets Qwen2's NFC
    normalizer and single-digit regex and no post-processor (no BOS, as in real Qwen2)."""
    style, eos, _ = MODELS[name]
    with open(os.path.join(TOK_SRC, style, "tokenizer.json"), encoding="utf-8") as f:
        j = json.load(f)
    m = j["model"]
    v = m["vocab"]
    inv = {i: s for s, i in v.items()}
    first_merge_id = max(v.values()) - len(m["merges"]) + 1
    base = [inv[i] for i in sorted(inv) if i < first_merge_id and not inv[i].startswith("<|")]
    assert len(base) == 256, len(base)
    specials = ["<|begin_of_text|>", eos]
    merges = m["merges"][:NV - len(specials) - 256]
    toks = specials + base + ["".join(mg) for mg in merges]
    assert len(set(toks)) == NV
    m["vocab"] = {t: i for i, t in enumerate(toks)}
    m["merges"] = merges
    j["added_tokens"] = [dict(id=i, content=t, single_word=False, lstrip=False, rstrip=False,
                              normalized=False, special=True) for i, t in enumerate(specials)]
    if name == "qwen2-tiny":
        j["normalizer"] = {"type": "NFC"}
        j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_RE}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
        j["post_processor"] = None
    pp = j.get("post_processor")
    if pp:  # llama3-style BOS template: kept, BOS id 0
        pp["special_tokens"]["<|begin_of_text|>"]["ids"] = [0]
    return j


def write_models():
    for name, (_, eos, bos) in MODELS.items():
        d = os.path.join(DATA, "models", name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(GOLDEN, name, "config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(build_tokenizer(name), f, ensure_ascii=False, indent=1)
        tc = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos,
              "model_max_length": cfg["max_position_embeddings"], "clean_up_tokenization_spaces": False}
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f, indent=1)
        with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
            json.dump({"bos_token": bos, "eos_token": eos}, f, indent=1)
    with open(os.path.join(DATA, "models", "README.md"), "w") as f:
        f.write(MODELS_README)


MODELS_README = """\
# Tokenizers of the golden tiny models (for lm-evaluation-harness)

Written by `tests/gen_lmeval_refs.py` (`build_tokenizer`). Each directory holds the
`tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` that Hugging Face
`AutoTokenizer` loads for that model. The weights are not copied: they are
`/work/shared/golden/dense/<name>/config.json` and `model.safetensors` (in the repository,
`../shared/golden/dense/<name>/`). A test puts symlinks to those two files beside these three
in a temporary directory, and that directory is then a complete checkpoint for both effbench
(`--model DIR`) and lm-eval (`pretrained=DIR`).

| model | vocabulary (512 ids) | BOS | EOS |
| --- | --- | --- | --- |
| llama-tiny | `tests/data/tokenizers/llama3-style` cut to its first 254 merges: Llama-3 Split regex + ByteLevel | id 0 `<\\|begin_of_text\\|>`, added by the TemplateProcessing post-processor | id 1 `<\\|end_of_text\\|>` |
| qwen2-tiny | `tests/data/tokenizers/gpt2-style` cut to its first 254 merges, with Qwen2's NFC normalizer and single-digit Split regex + ByteLevel (no regex) | none (`bos_token: null`); id 0 `<\\|begin_of_text\\|>` is only an added special token | id 1 `<\\|endoftext\\|>` |

Ids: 0 `<|begin_of_text|>` (special), 1 EOS (special; the config's `eos_token_id: 1`),
2..257 the 256 byte-level symbols in the source tokenizer's order, 258..511 the merges.
"""

# ---------------------------------------------------------------------------------------------
# Tasks: lm-eval YAML (temporary) and effbench definitions (committed), over tasks/*.jsonl.
# ---------------------------------------------------------------------------------------------
DESCRIPTION = "The following are questions about everyday things.\n\n"
# name: (type, jsonl, extra effbench fields, extra lm-eval YAML lines)
TASKS = {
    "eb_mc_ws": ("multiple_choice", "eb_mc_ws.jsonl", {}, ""),
    "eb_mc_merge": ("multiple_choice", "eb_mc_merge.jsonl", {"target_delimiter": ""},
                    'target_delimiter: ""\n'),
    "eb_mc_fs": ("multiple_choice", "eb_mc_fs.jsonl",
                 {"num_fewshot": 2, "fewshot_file": "eb_mc_fs_train.jsonl", "description": DESCRIPTION},
                 "num_fewshot: 2\nfewshot_split: train\ndescription: %s\n" % json.dumps(DESCRIPTION)),
    # no fewshot_split: lm-eval draws from the test docs WITHOUT removing the doc itself
    "eb_mc_fs_self": ("multiple_choice", "eb_mc_fs_self.jsonl", {"num_fewshot": 2}, "num_fewshot: 2\n"),
    # fewshot_split == test_split: lm-eval draws n+1 and removes the doc
    "eb_mc_fs_test": ("multiple_choice", "eb_mc_fs_self.jsonl",
                      {"num_fewshot": 2, "fewshot_file": "eb_mc_fs_self.jsonl"},
                      "num_fewshot: 2\nfewshot_split: test\n"),
    "eb_mc_long": ("multiple_choice", "eb_mc_long.jsonl", {}, ""),
    "eb_pp": ("perplexity", "eb_pp.jsonl", {}, ""),
    # task-level until and a small max_gen_toks
    "eb_gen_until": ("generation", "eb_gen.jsonl", {"until": ["\n", " with"], "max_gen_tokens": 16},
                     'generation_kwargs:\n  until: ["\\n", " with"]\n  do_sample: false\n  max_gen_toks: 16\n'),
    # no generation_kwargs: until = [fewshot_delimiter] = ["\n\n"], max_gen_toks = HFLM's 256
    "eb_gen_default": ("generation", "eb_gen.jsonl", {"until": ["\n\n"], "max_gen_tokens": 256}, ""),
}
YAML_BY_TYPE = {
    "multiple_choice": """output_type: multiple_choice
doc_to_text: "{{context}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{answer}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
""",
    "perplexity": """output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
""",
    # exact_match with lm-eval's defaults (case, punctuation and numbers kept); no filter but
    # the default take_first, so the raw response is compared with the target as is
    "generation": """output_type: generate_until
doc_to_text: "{{context}}"
doc_to_target: "{{target}}"
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
""",
}


def effbench_task(name, window=None):
    typ, jsonl, extra, _ = TASKS[name]
    t = {"name": name, "type": typ, "file": jsonl, "num_fewshot": 0,
         "description": "", "fewshot_separator": "\n\n", "target_delimiter": " ",
         "fewshot_seed": FEWSHOT_SEED}
    if typ == "generation":
        t["until"] = ["\n\n"]
        t["max_gen_tokens"] = 256
    t.update(extra)
    if window is not None:
        t["window"] = window
    return t


def write_yaml(tdir, name):
    typ, jsonl, _, extra = TASKS[name]
    split_files = {"test": os.path.join(DATA, "tasks", jsonl)}
    if "fewshot_split: train" in extra:
        split_files["train"] = os.path.join(DATA, "tasks", TASKS[name][2]["fewshot_file"])
    files = "".join("    %s: %s\n" % (k, json.dumps(v)) for k, v in split_files.items())
    y = ("task: %s\ndataset_path: json\ndataset_kwargs:\n  data_files:\n%s"
         "test_split: test\n" % (name, files)) + YAML_BY_TYPE[typ] + extra + "metadata:\n  version: 1.0\n"
    if "num_fewshot" not in extra and typ != "perplexity":
        y += "num_fewshot: 0\n"
    with open(os.path.join(tdir, name + ".yaml"), "w") as f:
        f.write(y)


# ---------------------------------------------------------------------------------------------
# Runs: (run id, model, extra model_args, tasks)
# ---------------------------------------------------------------------------------------------
MC_GEN = ["eb_mc_ws", "eb_mc_merge", "eb_mc_fs", "eb_mc_fs_self", "eb_mc_fs_test",
          "eb_pp", "eb_gen_until", "eb_gen_default"]
W64 = ["eb_pp", "eb_mc_long"]
RUNS_ALL = [
    ("llama-tiny", "llama-tiny", "", MC_GEN),
    ("llama-tiny-nobos", "llama-tiny", ",add_bos_token=False", MC_GEN),
    ("qwen2-tiny", "qwen2-tiny", "", MC_GEN),
    ("llama-tiny-w64", "llama-tiny", ",max_length=64", W64),
    ("llama-tiny-nobos-w64", "llama-tiny", ",add_bos_token=False,max_length=64", W64),
    ("qwen2-tiny-w64", "qwen2-tiny", ",max_length=64", W64),
]
# LMEVAL_REFS_RUNS=id,id runs only those (the other out/ directories are kept)
ONLY = [r for r in os.environ.get("LMEVAL_REFS_RUNS", "").split(",") if r]
RUNS = [r for r in RUNS_ALL if not ONLY or r[0] in ONLY]


def parse_model_args(s):
    out = {}
    for kv in s.split(","):
        if kv:
            k, v = kv.split("=", 1)
            out[k] = v
    return out


def run_lm_eval(venv_bin, tmp, model_args, tasks, out_dir):
    cmd = [os.path.join(venv_bin, "lm_eval"), "--model", "hf",
           "--model_args", model_args, "--tasks", ",".join(tasks),
           "--include_path", os.path.join(tmp, "tasks"), "--device", "cpu", "--batch_size", "1",
           "--log_samples", "--output_path", out_dir]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", HF_HOME=os.path.join(tmp, "hf_home"))
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-8000:])
        sys.exit("lm_eval failed")
    return cmd


def load_outputs(out_dir, tasks):
    res = glob.glob(os.path.join(out_dir, "*", "results_*.json"))
    assert len(res) == 1, res
    with open(res[0]) as f:
        results = json.load(f)
    samples = {}
    for t in tasks:
        s = [f for f in glob.glob(os.path.join(out_dir, "*", "samples_%s_*.jsonl" % t))
             if os.path.basename(f)[len("samples_%s_" % t)].isdigit()]  # not samples_<t>_xyz_<date>
        assert len(s) == 1, (t, s)
        with open(s[0]) as f:
            samples[t] = sorted((json.loads(l) for l in f if l.strip()), key=lambda x: x["doc_id"])
    return results, samples


# ---------------------------------------------------------------------------------------------
# Per-item records, with the ids from lm-eval's own functions
# ---------------------------------------------------------------------------------------------
def encode_request(lm, ctx, cont):
    """The (context_enc, continuation_enc) that HFLM.loglikelihood builds (api/model.py
    TemplateLM.loglikelihood): the empty-context branch is inline there, copied here;
    everything else is HFLM._encode_pair."""
    if ctx == "":
        cont_enc = lm.tok_encode(cont, add_special_tokens=False)
        if lm.prefix_token_id != cont_enc[0]:
            return [lm.prefix_token_id], cont_enc
        return cont_enc[:1], cont_enc[1:]
    return lm._encode_pair(ctx, cont)


def mc_record(lm, s):
    doc = s["doc"]
    reqs = []
    for k in range(len(s["arguments"])):
        a = s["arguments"]["gen_args_%d" % k]
        ctx_enc, cont_enc = encode_request(lm, a["arg_0"], a["arg_1"])
        ll, greedy = s["resps"][k][0]
        whole = ctx_enc + cont_enc
        ctx, cont = a["arg_0"], a["arg_1"]
        n_sp = len(ctx) - len(ctx.rstrip())  # _encode_pair moves trailing whitespace
        reqs.append({
            "context": ctx, "continuation": cont,
            "context_encoded": ctx[:len(ctx) - n_sp] if ctx else "",
            "continuation_encoded": (ctx[len(ctx) - n_sp:] + cont) if ctx else cont,
            "context_enc": ctx_enc, "continuation_enc": cont_enc,
            # what _loglikelihood_tokens feeds: (ctx+cont)[-(max_length+1):][:-1]
            "input_len": len(whole[-(lm.max_length + 1):][:-1]),
            "truncated": len(whole) > lm.max_length + 1,
            "loglikelihood": float(ll), "is_greedy": greedy == "True" or greedy is True,
        })
    lls = [r["loglikelihood"] for r in reqs]
    lens = [len(c) for c in doc["choices"]]  # acc_norm: characters of the choice, no delimiter
    pred = max(range(len(lls)), key=lambda i: (lls[i], -i))
    pred_norm = max(range(len(lls)), key=lambda i: (lls[i] / lens[i], -i))
    gold = int(s["target"])
    assert s["acc"] == float(pred == gold) and s["acc_norm"] == float(pred_norm == gold), s["doc_id"]
    return {"doc_id": s["doc_id"], "doc": doc, "gold": gold, "requests": reqs,
            "prediction": pred, "prediction_norm": pred_norm,
            "metrics": {"acc": s["acc"], "acc_norm": s["acc_norm"]}}


def pp_record(lm, s):
    from lm_eval import utils
    text = s["arguments"]["gen_args_0"]["arg_0"]
    tokens = lm.tok_encode(text)
    windows = list(map(utils.make_disjoint_window, utils.get_rolling_token_windows(
        token_list=tokens, prefix_token=lm.prefix_token_id, max_seq_len=lm.max_length, context_len=1)))
    per = lm._loglikelihood_tokens([((None, None), c, p) for c, p in windows], disable_tqdm=True)
    ll = float(s["resps"][0][0])
    assert abs(sum(x[0] for x in per) - ll) <= 1e-6 * max(1.0, abs(ll)), (s["doc_id"], ll, per)
    wp, bp = s["word_perplexity"], s["byte_perplexity"]
    return {"doc_id": s["doc_id"], "text": text, "loglikelihood": ll,
            "words": wp[1], "bytes": bp[1], "tokens": tokens,
            "tokens_scored": sum(len(p) for _, p in windows),
            "windows": [{"context": c, "predicted": p, "loglikelihood": float(x[0])}
                        for (c, p), x in zip(windows, per)]}


def gen_record(lm, s):
    import torch
    from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
    a = s["arguments"]["gen_args_0"]
    ctx, gen_kwargs = a["arg_0"], a["arg_1"]
    kwargs = normalize_gen_kwargs(gen_kwargs, lm.max_gen_toks)
    until = handle_stop_sequences(kwargs.pop("until", None), eos=lm.tok_decode(lm.eot_token_id, skip_special_tokens=False))
    max_gen_toks = kwargs.pop("max_gen_toks")
    enc, mask = lm.tok_batch_encode([ctx], left_truncate_len=lm.max_length - max_gen_toks, truncation=lm.truncation)
    with torch.no_grad():
        out = lm._model_generate(context=enc, attention_mask=mask, stop=list(until),
                                 max_length=enc.shape[1] + max_gen_toks, **kwargs)
    gen_ids = out[0, enc.shape[1]:].tolist()
    text = postprocess_generated_text(lm.tok_decode(gen_ids), until, None)
    raw = s["resps"][0][0]
    assert text == raw, (s["doc_id"], text, raw)
    return {"doc_id": s["doc_id"], "doc": s["doc"], "context": ctx, "gen_kwargs": gen_kwargs,
            "until": until, "max_gen_toks": max_gen_toks, "context_enc": enc[0].tolist(),
            "generated_ids": gen_ids, "stopped_at_eos": lm.eot_token_id in gen_ids,
            "response": raw, "filtered_response": s["filtered_resps"][0], "target": s["target"],
            "metrics": {"exact_match": s["exact_match"]}}


def check_fewshot(name, samples):
    """Rebuild every few-shot context with random.Random(FEWSHOT_SEED) drawn doc by doc in
    doc_id order, as lm_eval.api.samplers.ContextSampler.sample does, and compare."""
    typ, jsonl, extra, yaml_extra = TASKS[name]
    n = extra.get("num_fewshot", 0)
    if n == 0:
        return None
    def load(fn):
        with open(os.path.join(DATA, "tasks", fn)) as f:
            return [json.loads(l) for l in f if l.strip()]
    test = load(jsonl)
    same_split = "fewshot_split: test" in yaml_extra
    pool = load(extra["fewshot_file"]) if "fewshot_file" in extra else test
    rnd = random.Random(FEWSHOT_SEED)
    drawn = []
    for s in samples:
        doc = test[s["doc_id"]]
        if same_split:
            shots = [x for x in rnd.sample(pool, n + 1) if x != doc][:n]
        else:
            shots = rnd.sample(pool, n)
        ctx = extra.get("description", "") + "".join(
            x["context"] + " " + x["choices"][x["answer"]] + "\n\n" for x in shots) + doc["context"]
        assert s["arguments"]["gen_args_0"]["arg_0"] == ctx, (name, s["doc_id"])
        drawn.append([pool.index(x) for x in shots])
    return drawn


# ---------------------------------------------------------------------------------------------
def versions():
    try:
        v = {p: metadata.version(p) for p in ("lm-eval", "torch", "transformers", "tokenizers", "datasets")}
    except metadata.PackageNotFoundError as e:
        sys.exit("package %s is not installed here: run with the lm-eval environment's python or pass --venv "
                 "(pip install 'lm-eval[hf]==%s')" % (e.name, LMEVAL_VERSION))
    if v["lm-eval"] != LMEVAL_VERSION:
        sys.exit("lm-eval %s found, %s needed: pip install 'lm-eval[hf]==%s'"
                 % (v["lm-eval"], LMEVAL_VERSION, LMEVAL_VERSION))
    v["python"] = sys.version.split()[0]
    return v


def scrub(obj, tmp):
    """The run's temporary directory and this checkout's path out of recorded strings."""
    s = json.dumps(obj, ensure_ascii=False)
    s = s.replace(json.dumps(tmp)[1:-1], "TMP").replace(json.dumps(DATA)[1:-1], "tests/data/lmeval")
    return json.loads(s)


def dump(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--venv", help="a virtual environment with lm-eval[hf]==%s" % LMEVAL_VERSION)
    args = ap.parse_args()
    if args.venv and os.path.realpath(sys.prefix) != os.path.realpath(args.venv):
        py = os.path.join(args.venv, "bin", "python")
        os.execv(py, [py, os.path.abspath(__file__)])
    vers = versions()
    venv_bin = os.path.dirname(sys.executable)
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                      TOKENIZERS_PARALLELISM="false")
    import torch
    torch.set_num_threads(1)
    from lm_eval.models.huggingface import HFLM

    write_models()
    for name in TASKS:
        dump(os.path.join(DATA, "tasks", name + ".json"), effbench_task(name))
    for name in W64:
        dump(os.path.join(DATA, "tasks", name + "_w64.json"), effbench_task(name, window=64))
    for run_id, _, _, _ in RUNS:
        shutil.rmtree(os.path.join(DATA, "out", run_id), ignore_errors=True)

    tmp = tempfile.mkdtemp(prefix="lmeval-refs-")
    try:
        os.makedirs(os.path.join(tmp, "tasks"))
        for name in TASKS:
            write_yaml(os.path.join(tmp, "tasks"), name)
        for name in MODELS:
            d = os.path.join(tmp, "models", name)
            os.makedirs(d)
            for fn in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
                shutil.copy(os.path.join(DATA, "models", name, fn), d)
            for fn in ("config.json", "model.safetensors"):
                os.symlink(os.path.join(GOLDEN, name, fn), os.path.join(d, fn))

        for run_id, model, extra, tasks in RUNS:
            model_dir = os.path.join(tmp, "models", model)
            model_args = "pretrained=%s,dtype=float32%s" % (model_dir, extra)
            out_dir = os.path.join(tmp, "out", run_id)
            cmd = run_lm_eval(venv_bin, tmp, model_args, tasks, out_dir)
            results, samples = load_outputs(out_dir, tasks)
            margs = parse_model_args(model_args)
            lm = HFLM(pretrained=model_dir, dtype="float32", device="cpu", batch_size=1,
                      max_length=int(margs["max_length"]) if "max_length" in margs else None,
                      add_bos_token=(margs["add_bos_token"] == "True") if "add_bos_token" in margs else None)
            if "max_length" in results:
                assert lm.max_length == results["max_length"], (lm.max_length, results["max_length"])
            settings = {
                "model": model, "weights": "golden/dense/" + model,
                "model_args": "pretrained=MODEL_DIR,dtype=float32" + extra,
                "command": " ".join(c if c != model_args else "'pretrained=MODEL_DIR,dtype=float32%s'" % extra
                                    for c in cmd).replace(tmp, "TMP").replace(cmd[0], "lm_eval"),
                "versions": vers, "max_length": lm.max_length,
                "add_bos_token": lm.add_bos_token,
                "tokenizer_adds_bos": lm.tokenizer.encode("a") != lm.tokenizer.encode("a", add_special_tokens=False),
                "prefix_token_id": lm.prefix_token_id, "eot_token_id": lm.eot_token_id,
                "max_gen_toks_default": lm.max_gen_toks, "batch_size": 1,
                "seeds": {k: results["config"].get(k) for k in ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")},
                "bootstrap_iters": results["config"].get("bootstrap_iters"),
            }
            for t in tasks:
                typ = TASKS[t][0]
                mk = {"multiple_choice": mc_record, "perplexity": pp_record, "generation": gen_record}[typ]
                items = [mk(lm, s) for s in samples[t]]
                window = lm.max_length if run_id.endswith("-w64") else None
                rec = {
                    "task": t, "type": typ,
                    "effbench_task": "tasks/%s%s.json" % (t, "_w64" if window else ""),
                    "settings": settings,
                    "lmeval_config": scrub(results["configs"][t], tmp),
                    "results": results["results"][t],
                    "n_samples": results["n-samples"][t],
                    "items": items,
                }
                fs = check_fewshot(t, samples[t])
                if fs is not None:
                    rec["fewshot_drawn"] = fs  # indices into the few-shot pool, per doc
                dump(os.path.join(DATA, "out", run_id, t + ".json"), rec)
                print("  %s/%s: %s" % (run_id, t, {k: v for k, v in results["results"][t].items() if k != "alias"}),
                      flush=True)
            del lm
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
